// Package train trains the study's networks with PyTorch's optimizers,
// schedule and Hessian-trace regularisation, one compiled GoMLX graph per
// step, writing the metrics and checkpoints of a train artifact.
//
// # Pieces
//
//   - Optimizer: SGD (coupled weight decay, momentum buffer, dampening,
//     Nesterov) and Adam (coupled L2, bias correction, eps outside the square
//     root), with PyTorch's update rules as graph ops.
//   - MultiStepLR: the learning rate of each epoch, stepped once per epoch.
//   - HTR: the seed's Hessian-trace penalty (SEED-SPEC §5), γ times the
//     Hutchinson estimate of the mini-batch Hessian's trace over a chosen set
//     of parameter tensors, differentiated through (third order).
//   - Trainer: the weights, batch-norm statistics and optimizer state of one
//     run, and its compiled steps; Step, TrainEpoch and Evaluate.
//   - Run: the epoch loop of a train artifact (docs/ARTIFACTS.md):
//     metrics.csv, timings.csv and checkpoints/epoch_NNNN.npz (+ .optim.npz).
//   - Bench: timings of the step, the HTR step and an epoch, as JSON.
//
// # One graph per step
//
// Forward, backward and the optimizer update of every parameter are one
// graph, compiled once per input shape (the full batch and the last partial
// batch) and per kind of step (train or eval mode for batch norm; plain or
// penalised), and reused. Parameters, running statistics and optimizer state
// stay GoMLX tensors from step to step: the only values that cross to Go each
// step are the loss (checked for NaN and Inf) and, on penalised steps, the
// trace estimate.
//
// # Determinism
//
// One seed drives the initialisation (models.Model.Init), the order of every
// epoch (datasets.ShuffleOrder(seed, epoch)) and the HTR probes (drawn in Go
// from a generator keyed by seed, epoch and step, so they are the same on
// every backend). The same seed on the same backend gives byte-identical
// metrics.csv files.
//
// # Usage without the runner
//
//	m, _ := models.New(models.LeNet, 1, 10)
//	cfg := train.Config{Model: m, Optimizer: train.SGD(0.01, 0.9), Epochs: 5, BatchSize: 256}
//	t, _ := train.New(backend, cfg, nil)
//	res, err := train.Run(ctx, t, data, train.Output{Dir: "out", Log: os.Stderr})
package train
