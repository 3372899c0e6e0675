package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newServerCmd is a placeholder until issue 2 lands; its owner replaces this file.
func newServerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "server",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("server: unavailable in this build (issue 2)")
		},
	}
}
