//go:build !unix

package cputime

func seconds() (float64, bool) { return 0, false }
