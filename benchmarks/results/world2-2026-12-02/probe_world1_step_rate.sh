#!/bin/bash
# world 1's shipped pretraining configuration, one thread: CPU seconds a step under today's load (calibration)
cd /work/wt/world
PYTHONPATH=$PWD OMP_NUM_THREADS=1 python3 -m runners.pretrain --threads 1 --no-progress --log-every 10 --eval-every 1000 \
  --output-dir /tmp/w1probe --stop-after-steps 40 > /tmp/w1probe.out 2>&1 &
pid=$!
last=""
while kill -0 $pid 2>/dev/null; do
  line=$(tail -1 /tmp/w1probe/log.jsonl 2>/dev/null)
  if [ "$line" != "$last" ]; then
    echo "$(awk '{print ($14+$15)/100}' /proc/$pid/stat 2>/dev/null) $line" >> /tmp/w1probe.cpu
    last="$line"
  fi
  sleep 1
done
