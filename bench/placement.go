// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package bench

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// bootID identifies the running kernel: two servers with the same one share a host (loopback, or
// network namespaces of one machine) and so share its CPUs. "" when unknown.
var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
})

// allowedCPUs lists the CPUs this process may run on, ascending (nil when unknown).
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var out []int
	for cpu := 0; cpu < len(set)*64; cpu++ {
		if set.IsSet(cpu) {
			out = append(out, cpu)
		}
	}
	return out
}

// appCPU chooses the CPU flow i's worker is pinned to (-1: unpinned). An explicit --cpu-src or
// --cpu-dst list wins. Between two hosts it is kperf's rule: the flow's net CPU plus --pin-off.
// When both roles share a host (shared), the net CPU is no guide: over loopback or veth the
// receive softirq runs on the sending thread's CPU, so kperf's rule puts the source, the target
// and the softirq on one CPU. There the source's flow i goes to the i-th allowed CPU and the
// target's to the one half the list away, so a flow's two ends never share a CPU when more than
// one exists (--pin-off shifts both).
func appCPU(spec *TestSpec, role Role, i, netCPU, ncpu int, shared bool, allowed []int) int {
	if spec.NoPin {
		return -1
	}
	list := spec.CPUsDst
	if role == RoleSource {
		list = spec.CPUsSrc
	}
	if len(list) > 0 {
		return list[i%len(list)]
	}
	if shared && len(allowed) > 0 {
		k := i + spec.PinOff
		if role == RoleTarget {
			k += len(allowed) / 2
		}
		return allowed[(k%len(allowed)+len(allowed))%len(allowed)]
	}
	if netCPU < 0 || ncpu < 1 {
		return -1
	}
	return ((netCPU+spec.PinOff)%ncpu + ncpu) % ncpu
}

// threadCPU returns the CPU thread tid of this process last ran on (/proc/self/task/TID/stat,
// field 39), or -1.
func threadCPU(tid int) int {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return -1
	}
	// The command name (field 2) may hold spaces and parentheses; the fields after its closing
	// parenthesis start at field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 39-2 {
		return -1
	}
	cpu, err := strconv.Atoi(string(f[39-3]))
	if err != nil {
		return -1
	}
	return cpu
}

// cpuSet collects the CPUs a thread or a softirq was seen on.
type cpuSet []int

func (s *cpuSet) add(cpu int) {
	if cpu >= 0 && !slices.Contains(*s, cpu) {
		*s = append(*s, cpu)
		slices.Sort(*s)
	}
}
