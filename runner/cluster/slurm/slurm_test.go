package slurm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hessian-spectra/runner/internal/fakekinds"
	"github.com/hessian-spectra/runner/pipelines"
	"github.com/hessian-spectra/runner/runner/cluster"
)

func TestSbatchArgs(t *testing.T) {
	base := cluster.JobSpec{Name: "runner-1a2b3c4d-0123456789abcdef", Comment: "runner cache=1a2b3c4d key=0123", Log: "/c/slurm/logs/k.%j.log", Dir: "/c"}
	head := []string{"--parsable", "--job-name=runner-1a2b3c4d-0123456789abcdef", "--comment=runner cache=1a2b3c4d key=0123", "--output=/c/slurm/logs/k.%j.log", "--chdir=/c"}
	for _, c := range []struct {
		name    string
		res     pipelines.Resources
		exclude []string
		want    []string
	}{
		{"nothing asked, nothing added", pipelines.Resources{}, nil, nil},
		{"every field", pipelines.Resources{GPUs: "a100:2", CPUs: 4, Mem: "16G", Time: "1:30:00", Partition: "gpu", Account: "lab", QOS: "long"}, nil,
			[]string{"--partition=gpu", "--account=lab", "--qos=long", "--time=1:30:00", "--mem=16G", "--cpus-per-task=4", "--gpus=a100:2"}},
		{"extra flags after", pipelines.Resources{Mem: "1G", Extra: []string{"--constraint=avx2", "--mail-type=END"}}, nil,
			[]string{"--mem=1G", "--constraint=avx2", "--mail-type=END"}},
		{"exclusions merged", pipelines.Resources{Extra: []string{"--exclude=n3,n1", "-xn4", "--nice=10"}}, []string{"n2", "n1"},
			[]string{"--exclude=n1,n2,n3,n4", "--nice=10"}},
		{"resubmission excludes", pipelines.Resources{}, []string{"n7"}, []string{"--exclude=n7"}},
	} {
		j := base
		j.Resources, j.Exclude = c.res, c.exclude
		got, err := SbatchArgs(&j)
		if want := append(append([]string(nil), head...), c.want...); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q, %v\nwant %q", c.name, got, err, want)
		}
	}
	j := base
	j.Resources.Extra = []string{"--job-name=x"}
	if _, err := SbatchArgs(&j); err == nil || !strings.Contains(err.Error(), "the runner names jobs") {
		t.Errorf("reserved flag: %v", err)
	}
}

func TestReserved(t *testing.T) {
	for flag, reservedWant := range map[string]bool{
		"--job-name=x": true, "-Jx": true, "--comment=hi": true, "--output=o": true, "-o": true, "--chdir=/": true,
		"--dependency=afterok:1": true, "--array=0-3": true, "--wait": true, "-W": true, "--hold": true,
		"--partition=p": true, "-pdebug": true, "--part=debug": true, "--acc=x": true, "--time=10": true, "-t10": true,
		"--mem=1G": true, "--gpus=1": true, "-G1": true, "--cpus-per-task=2": true, "-c2": true,
		"--mem-per-cpu=1G": false, "--constraint=avx2": false, "-C": false, "--gres=gpu:1": false, "--exclude=n1": false,
		"--nice=10": false, "--requeue": false, "--export=ALL": false, "--exclusive": false, "--ntasks=1": false,
	} {
		if got := Reserved(flag) != ""; got != reservedWant {
			t.Errorf("Reserved(%q) = %q", flag, Reserved(flag))
		}
	}
}

func TestParseParsable(t *testing.T) {
	for out, want := range map[string]string{
		"42\n":                           "42",
		"42;cluster2\n":                  "42",
		"sbatch: warning: x\n1234567\n":  "1234567",
		"":                               "",
		"Submitted batch job 42\n":       "",
		"sbatch: error: Invalid account": "",
	} {
		got, err := ParseParsable(out)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ParseParsable(%q) = %q, %v", out, got, err)
		}
	}
}

func TestParseSqueue(t *testing.T) {
	out := `3|runner-abc-0123|FAILED|NonZeroExitCode|768|vm|runner cache=abc key=0123 stage=a|b[x=1]
4|x|CANCELLED|None|15|vm|(null)
5|x|PENDING|Priority|0|(null)|c
6|x|NODE_FAIL|None|0|vm|c
7|x|TIMEOUT|TimeLimit|15|vm|c
8|x|OUT_OF_MEMORY|OutOfMemory|0|vm|c
9|x|COMPLETED|None|0|vm|c
10|x|COMPLETING|None|0|vm|c
11|x|REVOKED|None|0||c
`
	sts, err := ParseSqueue(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []cluster.JobStatus{
		{ID: "3", Name: "runner-abc-0123", State: cluster.Failed, Raw: "FAILED", Reason: "NonZeroExitCode", ExitCode: "3:0", Node: "vm", Comment: "runner cache=abc key=0123 stage=a|b[x=1]"},
		{ID: "4", Name: "x", State: cluster.Cancelled, Raw: "CANCELLED", Reason: "None", ExitCode: "0:15", Node: "vm"},
		{ID: "5", Name: "x", State: cluster.Queued, Raw: "PENDING", Reason: "Priority", ExitCode: "0:0", Comment: "c"},
		{ID: "6", Name: "x", State: cluster.NodeFailed, Raw: "NODE_FAIL", Reason: "None", ExitCode: "0:0", Node: "vm", Comment: "c"},
		{ID: "7", Name: "x", State: cluster.TimedOut, Raw: "TIMEOUT", Reason: "TimeLimit", ExitCode: "0:15", Node: "vm", Comment: "c"},
		{ID: "8", Name: "x", State: cluster.OutOfMemory, Raw: "OUT_OF_MEMORY", Reason: "OutOfMemory", ExitCode: "0:0", Node: "vm", Comment: "c"},
		{ID: "9", Name: "x", State: cluster.Succeeded, Raw: "COMPLETED", Reason: "None", ExitCode: "0:0", Node: "vm", Comment: "c"},
		{ID: "10", Name: "x", State: cluster.Running, Raw: "COMPLETING", Reason: "None", ExitCode: "0:0", Node: "vm", Comment: "c"},
		{ID: "11", Name: "x", State: cluster.Unknown, Raw: "REVOKED", Reason: "None", ExitCode: "0:0", Comment: "c"},
	}
	if !reflect.DeepEqual(sts, want) {
		t.Errorf("got\n%+v\nwant\n%+v", sts, want)
	}
	if _, err := ParseSqueue("garbage\n"); err == nil {
		t.Error("a malformed row is not an error")
	}
}

func TestExitCode(t *testing.T) {
	for field, want := range map[string]string{"0": "0:0", "768": "3:0", "15": "0:15", "9": "0:9", "34816": "136:0", "": "", "N/A": ""} {
		if got := ExitCode(field); got != want {
			t.Errorf("ExitCode(%q) = %q, want %q", field, got, want)
		}
	}
}

// shim writes an executable script standing for a Slurm command.
func shim(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	q := New()
	q.Sinfo = shim(t, "sinfo", `echo debug; echo gpu`)
	spec := `
name: s
resources:
  job: {partition: PART}
  a: {extra: [EXTRA]}
stages:
  a: {kind: job}
`
	parse := func(part, extra string) []pipelines.ResourceRule {
		src := strings.NewReplacer("PART", part, "EXTRA", extra).Replace(spec)
		p, err := pipelines.Parse("s.yaml", []byte(src), pipelines.Options{Registry: fakekinds.Registry()})
		if err != nil {
			t.Fatal(err)
		}
		return p.Resources
	}
	ctx := context.Background()
	if err := q.Check(ctx, parse("gpu", "--constraint=x"), pipelines.Resources{}); err != nil {
		t.Errorf("good spec: %v", err)
	}
	if err := q.Check(ctx, parse("nope", "--constraint=x"), pipelines.Resources{}); err == nil || err.Error() != `s.yaml:4:3: resources job: slurm has no partition "nope" (it has debug, gpu)` {
		t.Errorf("bad partition: %v", err)
	}
	if err := q.Check(ctx, parse("nope", "--constraint=x"), pipelines.Resources{Partition: "debug"}); err != nil {
		t.Errorf("--slurm-partition overrides the spec's: %v", err)
	}
	if err := q.Check(ctx, parse("gpu", "--constraint=x"), pipelines.Resources{Partition: "nope"}); err == nil || !strings.HasPrefix(err.Error(), `--slurm-partition: slurm has no partition "nope"`) {
		t.Errorf("bad --slurm-partition: %v", err)
	}
	if err := q.Check(ctx, parse("gpu", "--output=/tmp/x"), pipelines.Resources{}); err == nil || !strings.HasPrefix(err.Error(), "s.yaml:5:15: resources a: extra --output=/tmp/x: the runner keeps each job's output") {
		t.Errorf("reserved extra: %v", err)
	}
	if err := q.Check(ctx, nil, pipelines.Resources{Extra: []string{"-t5"}}); err == nil || !strings.Contains(err.Error(), "--slurm-extra -t5: use time:") {
		t.Errorf("reserved --slurm-extra: %v", err)
	}
	q.Sinfo = shim(t, "sinfo", `echo "sinfo: error: Unable to contact slurm controller" >&2; exit 1`)
	if err := q.Check(ctx, parse("nope", "--constraint=x"), pipelines.Resources{}); err != nil {
		t.Errorf("sinfo failing leaves the check to sbatch: %v", err)
	}
}

func TestCommandErrors(t *testing.T) {
	q := New()
	q.Sbatch = shim(t, "sbatch", `cat >/dev/null; echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2; exit 1`)
	_, err := q.Submit(context.Background(), &cluster.JobSpec{Name: "n", Script: "#!/bin/sh\n"})
	var te *cluster.TransientError
	if err == nil || err.Error() != q.Sbatch+": Batch job submission failed: Invalid partition name specified" || isTransient(err, &te) {
		t.Errorf("permanent: %v", err)
	}
	q.Sbatch = shim(t, "sbatch", `cat >/dev/null; echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2; exit 1`)
	if _, err := q.Submit(context.Background(), &cluster.JobSpec{Name: "n", Script: "#!/bin/sh\n"}); !isTransient(err, &te) {
		t.Errorf("transient: %v", err)
	}
	script := filepath.Join(t.TempDir(), "script")
	q.Sbatch = shim(t, "sbatch", `cat > `+script+`; echo "$@" > `+script+`.args; echo "77;c1"`)
	id, err := q.Submit(context.Background(), &cluster.JobSpec{Name: "n", Script: "#!/bin/sh\nexec true\n", Dir: "/c", Log: "/c/l"})
	body, _ := os.ReadFile(script)
	args, _ := os.ReadFile(script + ".args")
	if id != "77" || err != nil || string(body) != "#!/bin/sh\nexec true\n" || !strings.HasPrefix(string(args), "--parsable --job-name=n ") {
		t.Errorf("submit: %q, %v; script %q; args %q", id, err, body, args)
	}
	q.Squeue = shim(t, "squeue", `echo "$@" > `+script+`.args; echo '5|n|RUNNING|None|0|vm|c'`)
	sts, err := q.Query(context.Background(), []string{"a", "b"})
	args, _ = os.ReadFile(script + ".args")
	if err != nil || len(sts) != 1 || sts[0].State != cluster.Running || string(args) != "-h -t all --name=a,b -O "+squeueFormat+"\n" {
		t.Errorf("query: %+v, %v; args %q", sts, err, args)
	}
	q.Scancel = shim(t, "scancel", `echo "scancel: error: Kill job error on job id 5: Job/step already completing or completed" >&2; exit 1`)
	if err := q.Cancel(context.Background(), []string{"5"}); err != nil {
		t.Errorf("cancelling a finished job: %v", err)
	}
}

func isTransient(err error, te **cluster.TransientError) bool {
	if err == nil {
		return false
	}
	return errors.As(err, te)
}
