package main

import (
	"fmt"
)

const statusHelp = `
Status prints the cache directory, how many stage records and artifacts it
holds and their size, leftovers of crashed runs, and the stages whose lock
some process holds now (being computed).`

func runStatus(c *cli, args []string) int {
	cmd := findCommand("status")
	fs := c.newFlags(cmd, statusHelp)
	cache := cacheFlag(fs)
	pos, code, ok := c.parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		fs.Usage()
		return exitUsage
	}
	store, ok := c.openStore(*cache)
	if !ok {
		return exitFailed
	}
	st, err := store.Status()
	if err != nil {
		fmt.Fprintf(c.stderr, "runner status: %v\n", err)
		return exitFailed
	}
	w := c.stdout
	fmt.Fprintf(w, "cache:        %s\n", st.Dir)
	fmt.Fprintf(w, "records:      %d\n", st.Records)
	fmt.Fprintf(w, "artifacts:    %d (%s)\n", st.Objects, bytesString(st.Bytes))
	fmt.Fprintf(w, "downloads:    %s\n", bytesString(st.DownloadBytes))
	fmt.Fprintf(w, "temp dirs:    %d\n", st.Temp)
	fmt.Fprintf(w, "resumable:    %d (%s)\n", st.Scratch, bytesString(st.ScratchBytes))
	fmt.Fprintf(w, "failed logs:  %d\n", st.Failed)
	fmt.Fprintf(w, "quarantined:  %d\n", st.Quarantined)
	inUse := "no"
	if st.InUse {
		inUse = "yes"
	}
	fmt.Fprintf(w, "runs active:  %s\n", inUse)
	fmt.Fprintf(w, "locks held:   %d of %d\n", len(st.Held), st.Locks)
	for _, k := range st.Held {
		fmt.Fprintf(w, "  %s\n", k)
	}
	return exitOK
}

func bytesString(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
