//go:build !race

package paths

// Race is true in binaries built with -race, whose sync.Pool drops items at
// random: allocation counts mean nothing there.
const Race = false
