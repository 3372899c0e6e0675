// SPDX-License-Identifier: MIT

// Package version holds the build's version and commit, set by the linker:
//
//	go build -ldflags "-X github.com/devmemtcp/ncdevmem/internal/version.Version=v0.1.0 -X ...Commit=abc123"
package version

import "runtime/debug"

// Version and Commit are overwritten at link time by the Makefile.
var (
	Version = "dev"
	Commit  = ""
)

// String returns "VERSION (COMMIT)", reading the VCS stamp of the build when the linker set no commit.
func String() string {
	c := Commit
	if c == "" {
		c = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					c = s.Value[:12]
				}
			}
		}
	}
	return Version + " (" + c + ")"
}
