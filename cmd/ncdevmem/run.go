package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newRunCmd is a placeholder until issue 2 lands; its owner replaces this file.
func newRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "run",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("run: unavailable in this build (issue 2)")
		},
	}
}
