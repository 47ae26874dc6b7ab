// Package cluster runs stages as jobs of a batch system while the runner
// process (the head) stays the scheduler: it implements runner.Executor on
// top of a Queue, a three-method interface (submit, query, cancel) that
// package slurm implements for Slurm and that a Kubernetes or Ray queue can
// implement next; everything else here is common to them.
//
// # Division of labour
//
// The head computes keys as inputs appear (a key covers its inputs'
// digests, so no job can be described before its inputs exist), serves
// cached stages, and runs light stages itself. Each other stage becomes one
// job, submitted when its inputs exist (no dependency chains in the queue),
// whose script waits until the input artifacts are visible on its node and
// then execs `runner exec-stage --cache DIR KEY` of the head's own binary,
// copied into the cache (StageBinary). That process reads the job
// description the head stored under the key, takes the key's lock, runs the
// stage and stores its artifact, exactly as a local run does. The head
// follows all its jobs with one queue query per poll and treats the cache as
// the truth: a key whose artifact is stored has succeeded, whatever the
// queue says. The outcome table is decide's documentation.
//
// # Layout
//
// Under the cache root, in a directory named after the queue (slurm/):
//
//	id                  the cache's random id; job names carry it
//	<key>.json          the record of the job computing key (Record)
//	locks/<key>.lock    the record lock of key: every change to the record is made under it
//	runs/<run>.lock     held by each live run for its lifetime
//	logs/<key>.<job>.log  a job's output; removed when its stage succeeds
//	bin/runner-<hash>   the runner binaries jobs run, by content
//
// Jobs are named runner-<cache id>-<first 16 hex digits of the key> and
// carry "runner cache=<id> key=<key> spec=<spec> stage=<id>" as comment, so
// a job is found by name and checked by comment.
//
// # Never twice, never lost
//
// A record exists for a key from just before its job is submitted until
// the job's outcome is settled. The protocol, for a key that is not cached:
//
//   - Submitting: under the record lock, the head creates the record in
//     state "submitting" (with link(2), which fails if a record exists, on
//     a network file system too), submits, then rewrites the record as
//     "submitted" with the job id (by rename, atomic). A submission is not
//     interrupted by Ctrl-C: the job it queues is then cancelled instead.
//   - Claiming: a head that needs the key takes the record lock, and with
//     no record (and nobody holding the key's lock, which would mean a
//     runner computing it in its own process) submits; with a "submitted"
//     record it follows the job named there instead of submitting: its own
//     job, another live run's (which it follows too), or the job of a run
//     that died (which it adopts: it rewrites the record with its own run
//     id). A record found "submitting" under the lock means that its writer
//     died between writing it and learning the job id: the head looks for a
//     live job by name and comment, adopts it if there is one and submits
//     otherwise.
//   - Settling: when the key's artifact appears, or its job fails for good,
//     the owner removes the record, under the lock and only if it still
//     names that job. A job adopted from a dead run that had already ended
//     without its result is submitted again, as a new run reruns a failed
//     stage. After a node failure (or preemption without requeue) the key
//     is resubmitted, excluding the failed node, up to Options.Retries
//     times; whichever run gets the lock first resubmits, the others follow
//     the new job.
//
// So two heads on one cache never submit the same key at once, a head
// killed at any instant leaves jobs that the next run needing their keys
// adopts, and a job is never left running with no record to find it by.
// The head never holds the key's own lock (artifacts.Store.LockKey): the
// job's exec-stage takes it. A runner with the local executor waits on that
// lock like on any other runner's; a Slurm job whose key another runner
// computes locally waits on it too, then finds the key cached and exits.
//
// Like the store's, these guarantees rest on flock(2) and on rename and
// link being atomic. On a network file system whose flock does not work
// across machines, link(2) still keeps two heads from submitting a fresh
// key twice, but adoption races are no longer excluded; run heads that
// share a cache on one machine, or on a file system whose locks work.
//
// # Stopping
//
// Ctrl-C (or a failure without --keep-going) cancels the jobs this run
// owns with one call and removes their records; Options.Detach leaves them
// queued and running, and the next run adopts them. `runner slurm ls` lists
// the recorded jobs and `runner slurm cancel [--orphans]` cancels them (List
// and Cancel).
//
// # Test hook
//
// RUNNER_TEST_CRASH=after-submit in the environment kills the head with
// SIGKILL right after a submission returns, before its record says so: the
// crash the "submitting" state exists for.
package cluster
