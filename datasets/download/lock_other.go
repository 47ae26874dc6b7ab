//go:build !unix

package download

// lock is a no-op where flock is unavailable: concurrent downloads of one
// file into one directory are then the caller's to avoid.
func lock(string) (func(), error) { return func() {}, nil }
