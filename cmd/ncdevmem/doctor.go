package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newDoctorCmd is a placeholder until issue 3 lands; its owner replaces this file.
func newDoctorCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "doctor",
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("doctor: unavailable in this build (issue 3)")
		},
	}
}
