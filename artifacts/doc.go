// Package artifacts is the runner's content-addressed store of stage outputs:
// put, get, lock, verify and collect garbage, plus the human-readable
// results/ view that links stage ids to stored artifacts.
//
// # Concepts
//
// A stage Key is the SHA-256 of a complete description of one stage
// computation (kind, implementation version, resolved params, input
// digests); package runner computes it. A Digest is the SHA-256 of an
// artifact's Manifest: the sorted list of its files with their sizes and
// SHA-256 sums. The digest covers results only: the runner-added log.txt and
// the run/ directory at the top of an artifact (wall times, host, backend:
// see Undigested) are kept but left out of the manifest, so a deterministic
// stage recomputed yields the same digest on any machine or executor, after
// any number of interruptions. A Record maps a key to a digest.
//
// # Layout
//
// A store is one directory (the cache root, by default .runner/ in the
// working directory):
//
//	objects/ab/<digest>/           artifact directories, read-only once stored
//	objects/ab/<digest>.manifest   their manifests (the text the digest hashes)
//	objects/ab/<digest>.stamp      size and modification time of each file when
//	                               stored or last verified (see CheckObject)
//	keys/ab/<key>.json             records: key → digest, written last
//	keys/ab/<key>.desc.json        what went into the key and how to run it again
//	locks/ab/<key>.lock            one flock(2) lock per key
//	tmp/<key>.<pid>.<n>/           outputs of running stages
//	failed/<key>.log               logs of stages that failed
//	quarantine/<digest>.<time>/    corrupt artifacts set aside by Verify
//	downloads/                     partial downloads shared by all runs (stage.Env.Downloads)
//	scratch/<key>/                 resumable state of an interrupted stage (stage.Env.Scratch),
//	                               removed once the key's artifact is stored
//	index/<spec>.json              stage id → key and digest of each spec's latest run
//	index/reuse/ab/<group>.json    reuse index: the keys stored in one reuse group, with
//	                               their values of the kind's reuse params (see below)
//	locks/ab/<group>.reuse.lock    taken while a runner adds to that reuse index
//	cache.lock                     shared by every run, exclusive for GC and Verify
//	slurm/                         records, logs and binaries of Slurm jobs (package
//	                               runner/cluster documents it); GC keeps the description
//	                               of a key that has a job record there
//
// where ab is the first two hex digits of the name.
//
// # Reuse index
//
// A stage kind may declare reuse params (stage.Reuse: the train kind's
// epochs, milestones and snapshot_every; the lanczos kind's probes,
// trace_probes and top_k). The computations of such a kind that agree in
// everything else — kind, version, other params, input digests — form a
// reuse group, named by the SHA-256 of that common part (package runner
// computes it). index/reuse/ab/<group>.json lists, as a JSON array of
// {"key": …, "params": {…}}, the keys of the group's stored artifacts
// with their reuse params; the runner appends to it (AddReuse, under the
// group's lock) whenever it stores an artifact of such a kind, or serves
// one from a group that has no index yet, and reads it (ReadReuse) when a
// stage must run, to find an artifact it can start from — a 5-epoch run
// for a 7-epoch one — without scanning the cache. Entries whose record is
// gone are skipped, and GC removes them.
//
// # Crash safety
//
// A stage writes into a fresh directory under tmp/. Put hashes it, makes it
// read-only, writes its manifest (to a temporary name, then rename), moves the
// directory into objects/ by rename, and only then writes the record, again by
// rename. A process killed at any instant therefore leaves either a complete
// entry or garbage that no record points to: a directory under tmp/ (removed
// by the next process that takes that key's lock, or by GC), or an object
// without a record (removed by GC). A record is never written before its
// object is complete, so no later run trusts a half entry. The object's
// files and directories, its manifest and the record are fsync'ed in that
// order (each directory after the entries made in it), so the same holds
// after a power loss on a file system that honours fsync.
//
// # What a hit checks
//
// Get (and the runner's look-up through a spec index) checks that the object
// is whole before serving it: its manifest readable, every listed file
// present with its size and the modification time recorded in its stamp,
// one stat(2) per file. A file rewritten in place (through the results/
// view, say, as root or after a chmod) gets a new modification time and is
// re-hashed. A damaged object is reported (*DamagedError) and its stage
// recomputed; Put then moves the damaged copy to quarantine/ and stores the
// new one — Put re-hashes an existing object before it keeps it, so --force
// and --recheck repair even damage the cheap check cannot see. Verify
// re-hashes everything and is the deep check.
//
// # Concurrency
//
// It is safe for several processes on one machine to use the same store at
// once. They coordinate with flock(2) locks: a runner holds a key's lock while
// it computes that key, so two runners never compute the same stage twice,
// and a lock held by a process that dies is released by the kernel, never left
// stale. Every run holds cache.lock shared; GC and the quarantining step of
// Verify take it exclusively, so they never delete what a running process
// uses. A stage computed by a cluster job (`runner exec-stage` in another
// process, perhaps on another machine) takes the key's lock and cache.lock
// itself; the head process that submitted the job holds neither lock for
// it, and records the job under slurm/ instead (package runner/cluster).
// It is NOT safe to share a store between machines over a network file
// system unless that file system implements flock faithfully; many do not.
package artifacts
