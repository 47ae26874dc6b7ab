// Package datasets turns the study's image datasets into model-ready arrays,
// exactly as the seed preprocesses them: read from their published files,
// padded, scaled, normalised, cut into per-class Hessian subsets and
// shuffled mini-batches.
//
// # Datasets
//
// MNIST, FashionMNIST, CIFAR10, CIFAR100 and SVHN, with the constants of
// SEED-SPEC §1.1–1.2 in one table (Lookup). Sources: the official addresses
// (Download: checksums verified, partial downloads resumed), a local folder
// of the published files (ReadDir; e.g. Debian's /usr/share/datasets/fashion-mnist),
// or an .npz from any tool (ReadNPZ). Format readers live in the
// sub-packages idx, cifar and matv5; downloads in download; the NumPy-exact
// generator behind subsets and shuffles in nprand.
//
// # Preprocessing
//
// As the seed's transforms (test-time transform; no augmentation): zero-pad
// each side by (Size − RawSize)/2 pixels in raw pixel space (2 for the
// 28×28 MNIST-like sets, 0 for the 32×32 ones), then per pixel
//
//	x = (float32(v)/255 − float32(mean_c)) / float32(std_c)
//
// in float32 at every step (Normalize), which reproduces PyTorch's
// ToTensor + Normalize bit for bit (checked against the PyTorch-made fixture
// testdata/lenet-fmnist/subset.npz). SVHN labels 10 mean digit 0 and become
// 0; SVHN has 10 classes, or the seed's 11 under legacy.
//
// # The fetch artifact
//
// A directory (Set.Write, Load) holding
//
//	meta.json     dataset, classes, channels, height, width, pad, mean, std,
//	              pixels ("uint8" or "float32"), train and test {n, label_counts},
//	              source {kind, files: name, bytes, sha256 [, url, md5]}
//	train_x.npy   [N,C,H,W] padded images: uint8 raw values (0–255), or float32
//	              already normalised when an npz source gave float32
//	train_y.npy   [N] int64 labels
//	test_x.npy    as train_x.npy
//	test_y.npy    as train_y.npy
//
// Storing the padded uint8 values keeps the artifact 4× smaller than float32
// (and 4× faster to hash); Load normalises them with a 256-entry table per
// channel, which gives exactly the float32 values above. From numpy:
//
//	m = json.load(open("meta.json")); u = np.load("train_x.npy")
//	x = ((u.astype(np.float32) / np.float32(255)
//	      - np.float32(m["mean"])[:, None, None]) / np.float32(m["std"])[:, None, None])
//
// The same input always gives the same bytes (no timestamps, no local paths),
// so the same artifact digest. meta.json is written last.
//
// # Subsets and batches
//
// SubsetIndices reproduces the seed's per-class subset pick for pick (a
// NumPy legacy RandomState reseeded before every class); Split.Shuffled
// yields an epoch's mini-batches in the order
// numpy.random.RandomState([seed, epoch]).permutation(n), last partial batch
// kept; Split.Sequential yields them in dataset order.
package datasets
