package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newCleanupCmd is a placeholder until issue 4 lands; its owner replaces this file.
func newCleanupCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "cleanup",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("cleanup: unavailable in this build (issue 4)")
		},
	}
}
