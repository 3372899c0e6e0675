package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newSelftestCmd is a placeholder until issue 8 lands; its owner replaces this file.
func newSelftestCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "selftest",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("selftest: unavailable in this build (issue 8)")
		},
	}
}
