package slurm

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hessian-spectra/runner/runner/cluster"
)

// reserved maps the sbatch flags an `extra:` list may not hold to why.
var reserved = map[string]string{}

func init() {
	for _, r := range []struct {
		flags []string
		why   string
	}{
		{[]string{"--job-name", "-J", "--comment"}, "the runner names jobs to find them again"},
		{[]string{"--output", "-o", "--error", "-e"}, "the runner keeps each job's output in the cache (<cache>/slurm/logs)"},
		{[]string{"--chdir", "-D"}, "jobs run in the cache directory"},
		{[]string{"--parsable", "--wrap", "--test-only"}, "the runner writes the job script and reads sbatch's answer"},
		{[]string{"--array", "-a"}, "the runner submits one job per stage"},
		{[]string{"--dependency", "-d"}, "the runner submits a stage once its inputs exist"},
		{[]string{"--wait", "-W", "--hold", "-H"}, "it would stop the run from following its jobs"},
		{[]string{"--partition", "-p"}, "use partition: (or --slurm-partition)"},
		{[]string{"--account", "-A"}, "use account: (or --slurm-account)"},
		{[]string{"--qos", "-q"}, "use qos: (or --slurm-qos)"},
		{[]string{"--time", "-t"}, "use time: (or --slurm-time)"},
		{[]string{"--mem"}, "use mem: (or --slurm-mem)"},
		{[]string{"--cpus-per-task", "-c"}, "use cpus:"},
		{[]string{"--gpus", "-G"}, "use gpus:"},
	} {
		for _, f := range r.flags {
			reserved[f] = r.why
		}
	}
}

// Reserved says why flag may not be passed through `extra:`, or "" when it
// may. Long flags are matched as sbatch matches them, unambiguous prefixes
// included ("--part=x" is --partition).
func Reserved(flag string) string {
	name, _, _ := strings.Cut(flag, "=")
	if !strings.HasPrefix(name, "--") {
		if len(name) > 2 {
			name = name[:2] // -pdebug
		}
		return reserved[name]
	}
	if why, ok := reserved[name]; ok {
		return why
	}
	if len(name) >= 5 {
		for r, why := range reserved {
			if strings.HasPrefix(r, name) {
				return why
			}
		}
	}
	return ""
}

// SbatchArgs builds sbatch's arguments for j (its script goes to sbatch's
// standard input): what the runner needs to find and run the job, then the
// resources the spec and the command line ask for, then the extra flags.
// Nothing else is added: no account, no GPU task geometry, no defaults.
// Exclusions from `extra:` (--exclude=LIST, -xLIST) are merged with the
// nodes a resubmission avoids into one --exclude.
func SbatchArgs(j *cluster.JobSpec) ([]string, error) {
	args := []string{
		"--parsable",
		"--job-name=" + j.Name,
		"--comment=" + j.Comment,
		"--output=" + j.Log,
		"--chdir=" + j.Dir,
	}
	r := j.Resources
	add := func(flag, v string) {
		if v != "" {
			args = append(args, flag+"="+v)
		}
	}
	add("--partition", r.Partition)
	add("--account", r.Account)
	add("--qos", r.QOS)
	add("--time", r.Time)
	add("--mem", r.Mem)
	if r.CPUs > 0 {
		add("--cpus-per-task", fmt.Sprint(r.CPUs))
	}
	add("--gpus", r.GPUs)
	exclude := map[string]bool{}
	for _, n := range j.Exclude {
		exclude[n] = true
	}
	var extra []string
	for _, f := range r.Extra {
		if why := Reserved(f); why != "" {
			return nil, fmt.Errorf("sbatch flag %s: %s", f, why)
		}
		var list string
		switch {
		case strings.HasPrefix(f, "--exclude="):
			list = strings.TrimPrefix(f, "--exclude=")
		case strings.HasPrefix(f, "-x") && len(f) > 2:
			list = strings.TrimPrefix(strings.TrimPrefix(f, "-x"), "=")
		default:
			extra = append(extra, f)
			continue
		}
		for _, n := range strings.Split(list, ",") {
			if n != "" {
				exclude[n] = true
			}
		}
	}
	if len(exclude) > 0 {
		nodes := make([]string, 0, len(exclude))
		for n := range exclude {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
		args = append(args, "--exclude="+strings.Join(nodes, ","))
	}
	return append(args, extra...), nil
}
