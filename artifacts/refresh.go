package artifacts

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// Refresh lists the directories that hold the record of key k and, when the
// record names one, its artifact, and then returns what Get returns. On a
// network file system a client caches directory attributes for seconds; a
// listing makes it ask the server again, so that an entry another machine
// has just written becomes visible. Callers waiting for another machine's
// result (a cluster executor whose job has finished) use Refresh instead of
// Get.
func (s *Store) Refresh(k Key) (Record, bool, error) {
	listDir(filepath.Dir(s.recordPath(k)))
	if data, _, err := readSmall(s.recordPath(k)); err == nil {
		var r Record
		if json.Unmarshal(data, &r) == nil && isHex(string(r.Digest)) {
			listDir(filepath.Dir(s.ObjectDir(r.Digest)))
		}
	}
	return s.Get(k)
}

// listDir reads the names in dir, ignoring errors.
func listDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Readdirnames(-1)
		f.Close()
	}
}
