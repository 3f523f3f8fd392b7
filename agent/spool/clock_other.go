//go:build !linux

package spool

import "time"

func sysUptime() time.Duration { return time.Since(processStart) }

// sysBootID is unknown: a restart never counts the time the spool was
// closed.
func sysBootID() string { return "" }
