package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hessian-spectra/runner/artifacts"
)

// Job is a recorded job, as `runner slurm ls` shows it.
type Job struct {
	Record
	// ID is the job's id: Record.Job, or for a record left "submitting"
	// the job found by name ("" when none is).
	ID string
	// Status is what the queue says of it; Listed is false when the queue
	// no longer lists it (or has not said).
	Status JobStatus
	Listed bool
	// Orphan is set when the run that owns it is gone: no runner follows
	// it until a run needing its key adopts it.
	Orphan bool
	// Cached is set when the key's artifact is stored.
	Cached bool
}

// admin opens the records of q in store without starting a run.
func admin(store *artifacts.Store, q Queue) (*Executor, error) {
	x := &Executor{store: store, q: q, rec: records{dir: filepath.Join(store.Dir(), q.Name())}}
	if _, err := os.Stat(x.rec.dir); err != nil {
		return x, nil // no job was ever submitted from this cache
	}
	id, err := x.rec.cacheID()
	if err != nil {
		return nil, err
	}
	x.cacheID = id
	return x, nil
}

// List returns the jobs recorded in store's cache for q, oldest first, with
// their states from one query. A record left in state "submitting" by a run
// that died is matched to its job by name.
func List(ctx context.Context, store *artifacts.Store, q Queue) ([]Job, error) {
	x, err := admin(store, q)
	if err != nil || x.cacheID == "" {
		return nil, err
	}
	recs, err := x.rec.list()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(recs))
	for i, r := range recs {
		names[i] = x.jobName(r.Key)
	}
	var sts []JobStatus
	if len(names) > 0 {
		if sts, err = q.Query(ctx, names); err != nil {
			return nil, fmt.Errorf("%s: %w", q.Name(), err)
		}
	}
	byID := map[string]JobStatus{}
	live := map[artifacts.Key]JobStatus{} // newest live job of each key, for "submitting" records
	for _, s := range sts {
		byID[s.ID] = s
		if k := x.commentKey(s.Comment); k != "" && s.State.Live() {
			if old, ok := live[k]; !ok || jobIDLess(old.ID, s.ID) {
				live[k] = s
			}
		}
	}
	jobs := make([]Job, len(recs))
	for i, r := range recs {
		j := Job{Record: r, ID: r.Job, Orphan: !x.rec.alive(r.Run)}
		if r.State == stateSubmitting {
			if s, ok := live[r.Key]; ok {
				j.ID = s.ID
			}
		}
		if j.ID != "" {
			j.Status, j.Listed = byID[j.ID]
		}
		_, j.Cached, _ = store.Get(r.Key)
		jobs[i] = j
	}
	return jobs, nil
}

// Cancel cancels the recorded jobs that are still queued or running, in
// one call, and removes their records; with orphansOnly, only the jobs no
// live run follows. Records of jobs that already ended are removed too. It
// returns the jobs it cancelled.
func Cancel(ctx context.Context, store *artifacts.Store, q Queue, orphansOnly bool) ([]Job, error) {
	jobs, err := List(ctx, store, q)
	if err != nil {
		return nil, err
	}
	x, err := admin(store, q)
	if err != nil {
		return nil, err
	}
	var cancel []Job
	var ids []string
	for _, j := range jobs {
		if orphansOnly && !j.Orphan {
			continue
		}
		if j.Listed && j.Status.State.Live() {
			cancel = append(cancel, j)
			ids = append(ids, j.ID)
		}
	}
	if err := q.Cancel(ctx, ids); err != nil {
		return nil, fmt.Errorf("%s: %w", q.Name(), err)
	}
	for _, j := range jobs {
		if orphansOnly && !j.Orphan {
			continue
		}
		lock, err := x.rec.lock(ctx, j.Key)
		if err != nil {
			return cancel, err
		}
		if r, ok, err := x.rec.read(j.Key); err == nil && ok && r.Job == j.Job && r.Run == j.Run {
			x.rec.remove(j.Key)
		}
		lock.Unlock()
	}
	return cancel, nil
}
