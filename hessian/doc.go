// Package hessian provides spectral estimators for symmetric linear
// operators: Lanczos, stochastic Lanczos quadrature densities, top-k
// eigenvalues and Hutchinson traces.
//
// # Operators
//
// The estimators see an Operator: a dimension and a product dst = A·src on
// float64 vectors, which may fail (an error, never a panic) and is
// cancellable. Lanczos vectors, tridiagonals and every reduction are float64
// whatever the operator computes in; an operator working in float32
// converts at its boundary, and its rounding then limits the accuracy (a
// spec's `dtype: float64` is a property of the operator). Two optional
// extensions let one call compute several products: BatchOperator (one
// operator, several vectors) and Group (several operators that share work,
// such as the layer Hessians of one snapshot, which share a forward and a
// first backward pass).
//
// # Hessians of GoMLX models
//
// ModelHessian is the Group of the Hessians of a classifier's mean
// cross-entropy over a data set (a Classifier: a GoMLX graph function of
// explicit parameter nodes, e.g. ModelClassifier of a models.Weights), one
// operator per Target: every parameter (the full Hessian) or one tensor
// with all others fixed (its diagonal block). Products are Pearlmutter's,
// by double backpropagation, from graphs compiled once and reused; several
// products in one call share a forward and a first backward pass.
//
// # The seed's density estimator
//
// SpectralDensity with DefaultDensityOptions is the seed's LanczosLoop
// (SEED-SPEC §4.2–4.3), step by step:
//
//  1. a range run of 64 Lanczos steps (plain three-term recurrence, start
//     g/‖g‖, g ~ N(0, I)); lb = θ₁ − |β₆₄ S[64,1]| and ub = θ₆₄ + |β₆₄ S[64,64]|,
//     where β₆₄ is the norm computed at the 64th step (the residual norm,
//     not an entry of T) and S[64,·] the last row of T's eigenvectors: the
//     extreme Ritz values widened by their residual bounds;
//  2. a 5 % margin: lb −= 0.05(ub−lb), ub += 0.05(ub−lb); c = (lb+ub)/2,
//     d = (ub−lb)/2;
//  3. a Gaussian kernel with σ = h/√(8 ln 1.25), h = 2/(128−1), terms cut at
//     σ√(−2 ln 1e−8) (Kernel);
//  4. 1,024 grid points on [−1, 1];
//  5. a fresh 128-step run from a new random start: nodes (θ_k − c)/d,
//     weights S[1,k]²;
//  6. the Gaussian sum on the grid;
//  7. denormalised: x ← x·d + c, y ← y/d.
//
// The seed has no guard for β = 0; here a run stops at a breakdown (see
// BreakdownTolerance and Tridiagonal.Breakdown), which loses nothing: the
// Krylov space is then invariant and its quadrature exact. A range run that
// finds ub = lb (the zero operator) gets a small positive half-width instead
// of the seed's division by zero.
//
// Beyond the seed: DensityOptions.Probes averages several independent
// density runs on one grid and returns their per-point spread;
// Reorthogonalize: ReorthFull keeps the Lanczos vectors orthogonal;
// TopEigenvalues finds the largest eigenvalues to a tolerance;
// HutchinsonTrace estimates the trace with a standard error. Run computes
// all of these for a group of operators in lockstep.
//
// # Determinism
//
// Every random vector comes from its own PCG stream (Seed, stream) — see
// StreamBounds and the other stream constants — and every reduction is
// summed in a fixed order, so results depend on the seed alone: not on
// batching, grouping, scheduling, or the number of CPUs. Nor on the number
// of probes: probe p is the same in a run of 3 or of 5, which lets Run
// reuse what an earlier run computed (Request.Prior).
//
// # Accuracy of the density
//
// Let μ = (1/n) Σᵢ δ(λᵢ) be the spectral measure of A, with distribution
// function F on [λ₋, λ₊] = [λmin, λmax], and read the estimate as the
// distribution with masses proportional to Density.Mean at Density.Grid.
// With M = Steps, N = Points, P = Probes, d = HalfWidth and σ the kernel's
// σ on the normalised axis:
//
//	E W₁(estimate, μ) ≤ π(λ₊−λ₋)/(4M)                          quadrature
//	                  + √(2/π)·σ·d                             kernel
//	                  + d/(N−1)                                grid
//	                  + ∫ √(2F(x)(1−F(x)) / (P(n+2))) dx       sampling
//
// and the sampling term is at most (λ₊−λ₋)/√(2P(n+2)). Derivation, through
// the spectral measure μₚ = Σᵢ (uᵢᵀvₚ)² δ(λᵢ) of probe p's start vector vₚ
// and its Gauss quadrature νₚ (Ritz values and weights):
//
//   - Quadrature. νₚ integrates polynomials of degree ≤ 2M−1 exactly
//     against μₚ, and both live on [λ₋, λ₊] (Ritz values interlace). For a
//     1-Lipschitz f, |∫f dνₚ − ∫f dμₚ| ≤ 2·E₂ₘ₋₁(f), twice the best uniform
//     polynomial approximation error, and Jackson's theorem (Favard's sharp
//     constant π/2) bounds E₂ₘ₋₁(f) by (π/2)·((λ₊−λ₋)/2)/(2M). This holds
//     in exact arithmetic; floating-point Lanczos without
//     reorthogonalisation is exact quadrature for a measure whose atoms are
//     spread over tiny intervals around the λᵢ (Greenbaum 1989), so it
//     holds to rounding.
//   - Kernel. Convolving with a Gaussian of standard deviation σd moves
//     each unit of mass by E|Z|·σd = √(2/π)·σd on average. The cut at
//     Cutoff drops a relative mass below 1e-8, and the margin (0.091·d on
//     each side against a kernel half-width of 0.072·d) keeps the kernel on
//     the grid, provided [lb, ub] covers [λ₋, λ₊] (tested below).
//   - Grid. Point masses at grid points spaced 2d/(N−1) stand in for the
//     smooth density: mass moves by at most half a spacing.
//   - Sampling. vₚ = g/‖g‖ is uniform on the sphere, so the weights
//     (uᵢᵀvₚ)² are Dirichlet(½, …, ½) and μₚ((−∞, x]) is Beta(nF/2,
//     n(1−F)/2): mean F(x), variance 2F(1−F)/(n+2); averaging P probes
//     divides the variance by P. With E|X − EX| ≤ sd(X) and W₁ = ∫|F̄ − F|,
//     the sampling term follows.
//   - The first three terms hold for each probe and W₁ is convex under
//     mixing, so they hold for the average over probes.
//
// The first three terms are deterministic, the last bounds an expectation.
// With the seed's constants, d ≈ 0.55(λ₊−λ₋), the terms are about
// 0.0061, 0.0052, 0.0005 and at most 1/√(2P(n+2)) times λ₊−λ₋: one probe's
// sampling error dominates up to n ≈ 5,000, and the kernel dominates for a
// Hessian-like spectrum, where a few outliers set d and the near-zero bulk
// is smeared by σd. TestDensityAgainstExactSpectrum checks on spectra of
// dimension 200 to 5,000, five seeds each, that the mean W₁ stays below the
// bound and each run below the bound with the sampling term tripled; the
// measured means are 0.2–0.6 of the bound.
//
// # Costs
//
// A density costs BoundsSteps + Probes·Steps operator applications (192
// for the seed); without reorthogonalisation a run holds 4 vectors, with
// it Steps vectors. TopEigenvalues holds its whole Krylov basis and
// decomposes its tridiagonal every m/16 steps. Benchmarks (bench_test.go)
// measure the cost per Lanczos step at the LeNet (61,706) and ResNet18
// (11.2M) sizes with a one-pass operator, so that once a Hessian-vector
// product takes its place the rest is known.
package hessian
