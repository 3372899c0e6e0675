// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package nic

import (
	"io"
	"os"
)

// WithCrash returns req with the crash simulator crash (see Request.crash).
func WithCrash(req Request, crash func() bool) Request {
	req.crash = crash
	return req
}

// IsCrash reports whether err is a simulated crash.
func IsCrash(err error) bool { return err == errCrash }

// CleanupWith is Cleanup against k.
func CleanupWith(k Kernel, stateDir, ifname string, log io.Writer) error {
	return cleanup(&undoer{k: k, ifname: ifname, log: log}, stateDir)
}

// CleanupCrashing is CleanupWith with the crash simulator crash (see Request.crash).
func CleanupCrashing(k Kernel, stateDir, ifname string, log io.Writer, crash func() bool) error {
	return cleanup(&undoer{k: k, ifname: ifname, log: log, crash: crash}, stateDir)
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
