#!/usr/bin/env python3
"""Make the small Fashion-MNIST subset that the `augment` crate embeds.

Reads the full Fashion-MNIST data set (IDX files, gzip-compressed or raw) as
Debian's `dataset-fashion-mnist` package installs it, and writes a
class-balanced subset in the same IDX gzip layout:

    train: the first 600 images of each of the 10 classes (6,000 in all)
    test:  the first 100 images of each of the 10 classes (1,000 in all)

"First" means in the order of the original files; the chosen images keep
that order, so the classes stay interleaved as they are in the original.
The selection is deterministic and the gzip streams carry no timestamp or
file name, so running the script twice gives byte-identical files.

Usage:
    apt-get install -y dataset-fashion-mnist
    python3 scripts/make_embedded_subset.py [SOURCE_DIR] [OUTPUT_DIR]

SOURCE_DIR defaults to /usr/share/datasets/fashion-mnist (where the Debian
package puts the files), OUTPUT_DIR to augment/data/fashion-mnist-subset.
Only the Python standard library is used.
"""

import gzip
import os
import struct
import sys

CLASSES = 10
PER_CLASS = {"train": 600, "t10k": 100}
DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"
DEFAULT_OUTPUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "augment", "data", "fashion-mnist-subset"
)


def read_maybe_gzip(path):
    """The bytes of `path`, or of `path.gz` when only the compressed file exists."""
    for candidate in (path + ".gz", path):
        if os.path.exists(candidate):
            with open(candidate, "rb") as f:
                data = f.read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            return candidate, data
    sys.exit(f"make_embedded_subset: {path}(.gz) not found; install dataset-fashion-mnist "
             f"(apt-get install -y dataset-fashion-mnist) or pass the folder holding it")


def parse_idx(name, data, expected_magic):
    """Header dimensions and payload of an IDX file (unsigned-byte data only)."""
    magic = struct.unpack(">I", data[:4])[0]
    if magic != expected_magic:
        sys.exit(f"make_embedded_subset: {name}: magic {magic:#010x}, expected {expected_magic:#010x}")
    ndims = data[3]
    dims = struct.unpack(">" + "I" * ndims, data[4:4 + 4 * ndims])
    payload = data[4 + 4 * ndims:]
    size = 1
    for d in dims:
        size *= d
    if len(payload) != size:
        sys.exit(f"make_embedded_subset: {name}: header says {size} bytes of data, file has {len(payload)}")
    return dims, payload


def write_idx_gz(path, magic, dims, payload):
    """Write an IDX file, gzip-compressed with no timestamp so the bytes are reproducible."""
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as gz:
            gz.write(header + payload)


def make_split(source, output, split):
    per_class = PER_CLASS[split]
    image_name, images = read_maybe_gzip(os.path.join(source, f"{split}-images-idx3-ubyte"))
    label_name, labels = read_maybe_gzip(os.path.join(source, f"{split}-labels-idx1-ubyte"))
    (n, rows, cols), pixels = parse_idx(image_name, images, 0x00000803)
    (n_labels,), label_bytes = parse_idx(label_name, labels, 0x00000801)
    if n != n_labels:
        sys.exit(f"make_embedded_subset: {image_name} has {n} images but {label_name} has {n_labels} labels")

    side = rows * cols
    counts = [0] * CLASSES
    chosen = []
    for i in range(n):
        label = label_bytes[i]
        if counts[label] < per_class:
            counts[label] += 1
            chosen.append(i)
    if counts != [per_class] * CLASSES:
        sys.exit(f"make_embedded_subset: {split}: found only {counts} images per class")

    out_pixels = b"".join(pixels[i * side:(i + 1) * side] for i in chosen)
    out_labels = bytes(label_bytes[i] for i in chosen)
    write_idx_gz(os.path.join(output, f"{split}-images-idx3-ubyte.gz"), 0x00000803,
                 (len(chosen), rows, cols), out_pixels)
    write_idx_gz(os.path.join(output, f"{split}-labels-idx1-ubyte.gz"), 0x00000801,
                 (len(chosen),), out_labels)
    print(f"{split}: {len(chosen)} images ({per_class} per class) of {rows}x{cols}")


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SOURCE
    output = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUTPUT
    os.makedirs(output, exist_ok=True)
    for split in ("train", "t10k"):
        make_split(source, output, split)
    print(f"wrote {os.path.normpath(output)}")


if __name__ == "__main__":
    main()
