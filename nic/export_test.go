// SPDX-License-Identifier: MIT

package nic

import (
	"io"
	"os"
)

// SetCrashHook installs the crash simulator for external tests and returns the undo.
func SetCrashHook(f func() bool) func() {
	crashHook = f
	return func() { crashHook = nil }
}

// IsCrash reports whether err is a simulated crash.
func IsCrash(err error) bool { return err == errCrash }

// CleanupWith is Cleanup against k.
func CleanupWith(k Kernel, stateDir, ifname string, log io.Writer) error {
	return cleanup(k, stateDir, ifname, log)
}

// WriteTestJournal writes the journal a run leaves after journaling a channel change and before
// making it, for tests that make the change themselves on a real device.
func WriteTestJournal(dir, ifname string, old *Channels) error {
	ifindex, err := System().Ifindex(ifname)
	if err != nil {
		return err
	}
	j, err := createJournal(dir, ifname)
	if err != nil {
		return err
	}
	defer j.close()
	if err := j.append(record{Kind: recBegin, Ifname: ifname, Ifindex: ifindex, PID: os.Getpid()}); err != nil {
		return err
	}
	return j.append(record{Kind: recChannels, Channels: old})
}

// NtupleInfoWith and RSSInfoWith are the getters against k.
var (
	NtupleInfoWith = ntupleInfo
	RSSInfoWith    = rssInfo
)
