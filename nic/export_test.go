package nic

import "io"

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
