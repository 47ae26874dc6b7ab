//go:build !unix

package download

import "context"

// lock is a no-op where flock is unavailable: concurrent downloads of one
// file into one directory are then the caller's to avoid.
func lock(context.Context, string, func()) (func(), error) { return func() {}, nil }
