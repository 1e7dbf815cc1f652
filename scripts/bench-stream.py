"""torchvision's side of scripts/bench-stream.sh: images/s of the BYOL two-view
pipeline (decode with PIL, RandomResizedCrop from the original, flip,
colour jitter, grayscale, Gaussian blur, solarize, to tensor, normalise) over
a folder of JPEGs, with a DataLoader of 2 worker processes and batches of
32, as a torchvision user would run it. Not part of the project's build:
needs `pip install torch torchvision pillow`.

    python3 scripts/bench-stream.py FOLDER SIZE
"""
import os
import sys
import time

import torch
import torchvision
from PIL import Image
from torchvision import transforms as T


def view(size, blur_p, solarize_p):
    kernel = max(3, (size // 10) | 1)  # odd, about a tenth of the side, as ours
    return T.Compose([
        T.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
        T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=blur_p),
        T.RandomSolarize(0.5, p=solarize_p),
        T.ToTensor(),
        T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    ])


class TwoViews(torch.utils.data.Dataset):
    def __init__(self, folder, size):
        self.files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
        self.one, self.two = view(size, 1.0, 0.0), view(size, 0.1, 0.2)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        image = Image.open(self.files[i]).convert("RGB")
        return self.one(image), self.two(image)


def main():
    folder, size = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    data = TwoViews(folder, size)
    loader = torch.utils.data.DataLoader(
        data, batch_size=32, num_workers=2, persistent_workers=True
    )
    for _ in loader:  # warm: start the workers, fill the page cache
        break
    start = time.perf_counter()
    n = sum(v1.shape[0] for v1, _ in loader)
    rate = n / (time.perf_counter() - start)
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}: "
        f"{n} images, view {size}: {rate:.1f} images/s"
    )


if __name__ == "__main__":
    main()
