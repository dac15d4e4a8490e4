"""CPU loader throughput, fastdeit vs FFCV vs the torchvision/timm reference (see
fastdeit/bench/loader.py for what is measured and how).

    python benchmarks/bench_loader.py [--data FILE.beton] [--images 512] [--max-res 256 512]
        [--rounds 3] [--workers 1 2] [--json benchmarks/results/loader_cpu.json] [--note TEXT]
"""

from fastdeit.bench.loader import main

if __name__ == "__main__":
    main()
