#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Can softnic lease an RX queue to netkit? (scripts/vm/judges.sh; informational)

nk_devmem.py and userns_devmem.py lease a queue of NETIF to the guest end of a netkit pair
(netdev queue-create with a lease nest), then attach BPF programs with tc. The guest has no clang
or bpftool for the BPF half; this probe tries the lease half the way the kselftest library's
NetDrvContEnv and devmem_lib.configure_nic do, with the same YNL library, and prints what the
kernel said. It leaves the device as it found it (the netkit pair and netns are removed).
"""

import subprocess
import sys

sys.path.insert(0, "/ksrc/tools/testing/selftests/drivers/net/hw")
# pylint: disable=wrong-import-position
from lib.py import Netlink, NetdevFamily, NetNSEnter, RtnlFamily  # noqa: E402


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)


def main():
    ifname, queue = sys.argv[1], int(sys.argv[2])
    ifindex = int(open(f"/sys/class/net/{ifname}/ifindex", encoding="ascii").read())
    before = set(open("/proc/net/dev", encoding="ascii").read().split())
    try:
        RtnlFamily().newlink({"linkinfo": {"kind": "netkit", "data": {
            "mode": "l2", "policy": "forward", "peer-policy": "forward"}},
            "num-rx-queues": 2}, flags=[Netlink.NLM_F_CREATE, Netlink.NLM_F_EXCL])
    except Exception as e:  # pylint: disable=broad-except
        print(f"LEASE netkit pair: not created: {e}")
        return 1
    links = [w.rstrip(":") for w in set(open("/proc/net/dev", encoding="ascii").read().split()) - before
             if w.endswith(":")]
    links.sort(key=lambda n: int(open(f"/sys/class/net/{n}/ifindex", encoding="ascii").read()))
    guest = links[0]
    rc = 1
    try:
        sh("ip netns add nkl && ip netns attach init 1 && ip -n nkl netns set init 0")
        sh(f"ip link set dev {guest} netns nkl && ip -n nkl link set dev {guest} up")
        gidx = int(sh(f"ip netns exec nkl cat /sys/class/net/{guest}/ifindex").stdout)
        with NetNSEnter("nkl"):
            try:
                r = NetdevFamily().queue_create({"ifindex": gidx, "type": "rx", "lease": {
                    "ifindex": ifindex, "queue": {"id": queue, "type": "rx"}, "netns-id": 0}})
                print(f"LEASE {ifname} rx queue {queue} -> netkit {guest} (netns nkl): leased as "
                      f"its rx queue {r['id']}")
                rc = 0
            except Exception as e:  # pylint: disable=broad-except
                print(f"LEASE {ifname} rx queue {queue} -> netkit {guest}: refused: {e}")
        q = NetdevFamily().queue_get({"ifindex": ifindex, "id": queue, "type": "rx"})
        print(f"LEASE {ifname} queue {queue} as the kernel reports it: {q}")
    finally:
        sh(f"ip -n nkl link del dev {guest}; ip link del dev {links[-1]}; ip netns del nkl; "
           "ip netns del init")
    return rc


if __name__ == "__main__":
    sys.exit(main())
