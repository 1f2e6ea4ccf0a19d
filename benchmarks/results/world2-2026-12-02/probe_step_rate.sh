#!/bin/bash
# step-rate probe of the world-2 pretraining configuration: CPU seconds per step between two logged steps
cd /work/wt/world
PYTHONPATH=$PWD OMP_NUM_THREADS=1 python3 -m runners.pretrain --corpus runners/embedded/world2/corpus.txt.gz \
  --supervised runners/embedded/world2/supervised.jsonl.gz --tokenizer runners/embedded/world2/tokenizer \
  --config d_model=384 d_kv=32 num_heads=4 d_ff=576 num_layers=3 num_decoder_layers=3 feed_forward_proj=relu dropout_rate=0.0 \
  --steps 3000 --batch-size 32 --supervised-batch-size 32 --lr 7e-4 --warmup-steps 200 --chunk-length 114 \
  --precision "$1" --seed 0 --eval-every 1000 --save-every 1000 --threads 1 --cpu --no-progress --log-every 10 \
  --output-dir /tmp/w2probe-$1 --stop-after-steps 50 > /tmp/w2probe-$1.out 2>&1 &
pid=$!
tick=$(getconf CLK_TCK)
last=""
while kill -0 $pid 2>/dev/null; do
  line=$(tail -1 /tmp/w2probe-$1/log.jsonl 2>/dev/null)
  if [ "$line" != "$last" ]; then
    cpu=$(awk -v t=$tick '{print ($14+$15)/t}' /proc/$pid/stat 2>/dev/null)
    echo "$(date +%s) cpu=$cpu $line" >> /tmp/w2probe-$1.cpu
    last="$line"
  fi
  sleep 1
done
