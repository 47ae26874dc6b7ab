// Package onnxmodel imports a network exported to ONNX as a model whose
// weights are explicit graph inputs, converted to constructions that can be
// differentiated any number of times on every backend, so that package
// hessian takes its Hessians like a native model's.
//
//	m, err := onnxmodel.Open("net.onnx") // checks ops, inputs, outputs, external data
//	w, err := m.Weights(dtypes.Float64)  // the file's weights, by initializer name
//	c := w.Classifier(false)             // batch norm with running statistics
//	h, err := hessian.NewModelHessian(backend, c, data, targets, opts)
//
// # Parameters, statistics, layers
//
// Every floating-point initializer that a computation reads is a trainable
// parameter (Params), except those read as a BatchNormalization's running
// mean or variance (Buffers, held fixed) and those read only where a value
// must be known when the graph is built (a Reshape's shape, a Pad's pads):
// those are constants. Their names are the initializer names, PyTorch's
// state_dict names when the export keeps them (README, "Your own model";
// Notes warns when they look machine-generated, as after batch norm was
// folded into convolutions). PyTorch's exporter writes a parameter equal to
// an earlier one as an Identity of it; each such copy becomes a parameter
// of its own, as it was in PyTorch. Layers lists the weights of the Conv,
// Gemm and MatMul nodes, the analogue of the seed's "valid layers"; any
// parameter is a Hessian target.
//
// # Conversion
//
// The importer reads the file with github.com/gomlx/onnx-gomlx (the ONNX
// protobuf schema compiled for Go, and its parser) but converts the graph
// itself: onnx-gomlx's converter builds Conv on ConvGeneral (whose gradient
// needs Reverse), MaxPool on ReduceWindow (whose gradient, SelectAndScatter,
// has no gradient of its own) and batch norm on fused ops, none of which
// the pure-Go backend differentiates, and it has no Sigmoid, so no SiLU.
// Here convolutions are im2col products (package nn's Conv2D where its
// fast path applies, with its adjoint recipes), pooling windows are
// strided slices combined by Where and Add, padding is concatenation, and
// batch norm is package nn's, with gradients through the batch statistics
// in training mode. Every op used has a derivative rule built from the same
// ops (package nn overrides GoMLX's DotGeneral and Slice rules), so
// Hessian-vector products — and the third derivatives of Hessian-trace
// regularisation — run on the pure-Go backend and on XLA alike.
//
// Rank-4 activations are held in NHWC layout between convolutions,
// pooling, batch norm and element-wise ops, and transposed to ONNX's NCHW
// only where an op's meaning depends on the layout (Flatten, Reshape, …).
// Values known when the graph is built (shapes and what is computed from
// them, as in PyTorch's x.view(x.size(0), -1)) are computed in Go. The
// whole graph computes in the dtype of the input (float32 or float64); the
// file's float constants are converted to it, and float attributes, which
// ONNX stores in single precision, are read as the shortest decimal that
// rounds to them (0.1f as 0.1), so that a float64 Hessian equals PyTorch's
// double-precision one.
//
// # Ops
//
// SupportedOps lists the ONNX ops with a conversion; Open names those a
// file uses without one. Tested against PyTorch's double-backward
// Hessian-vector products (testdata/onnx/make_fixtures.py, pytorch_test.go;
// 1e-14 relative in float64): Conv (1-D and 2-D; groups, strides,
// dilations, asymmetric padding), MaxPool (1-D and 2-D; padding, ceil mode,
// dilation), AveragePool (counting the padding or not), GlobalAveragePool,
// BatchNormalization (running or batch statistics), LayerNormalization,
// Gemm, MatMul, Add, Sub, Mul, Div, Pow, Sqrt, Relu, LeakyRelu, PRelu, Elu,
// Selu, Sigmoid, HardSwish, Tanh, Softplus, Erf, Exp, Log, Sin, Cos, Abs,
// Neg, Reciprocal, Max, Min, Where, Equal, Greater, GreaterOrEqual, Less,
// Not, Clip, Softmax, LogSoftmax, ReduceMean, ReduceSum, ReduceMax,
// Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat, Slice, Split,
// Expand, Pad (constant), Gather, Shape, Constant, ConstantOfShape and
// Cast. Converted from the same constructions but absent from PyTorch
// 1.13's exports of the fixtures: HardSigmoid (PyTorch 1.13 cannot
// differentiate it twice), Softsign, Mish and Gelu as single ops, Sum,
// Mean, LessOrEqual, ReduceMin, GlobalMaxPool, Range, and Identity and
// Dropout (the identity). Ties go as in PyTorch: a max pooling window's
// derivative to its first maximum, ReduceMax's and GlobalMaxPool's split
// evenly among tied maxima (torch.amax). Not converted: a Slice with a
// negative step on computed values (a reversal), casts of computed values
// to integers, control flow, recurrent layers, quantisation, Resize, and
// the ops of other domains.
package onnxmodel
