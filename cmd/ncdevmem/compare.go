package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newCompareCmd is a placeholder until issue 9 lands; its owner replaces this file.
func newCompareCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "compare",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("compare: unavailable in this build (issue 9)")
		},
	}
}
