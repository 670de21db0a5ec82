/**
 * Writes part of Fashion-MNIST (Debian's dataset-fashion-mnist, read by @fineprune/datasets) as an
 * image folder — one PNG per image, one folder per class — the layout a recipe's `data.images`
 * reads: data/fashion/train/<class>/<index>.png and data/fashion/test/<class>/<index>.png.
 *
 *     pnpm write-fashion                      # 6,000 training and 1,000 test images
 *     tsx write-fashion-pngs.ts [directory] [train] [test]
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFashionMnist, type Split } from '@fineprune/datasets';
import { PNG } from 'pngjs';

/** A class name as a folder name ("T-shirt/top" → "T-shirt-top"). */
function folderName(label: string): string {
  return label.replace(/[^A-Za-z0-9_-]+/g, '-');
}

function writeSplit(split: Split, count: number, classes: string[], directory: string): void {
  const size = Math.sqrt(split.featureSize);
  for (const name of classes) mkdirSync(path.join(directory, name), { recursive: true });
  for (let index = 0; index < Math.min(count, split.count); index++) {
    const image = new PNG({ width: size, height: size, colorType: 0, inputColorType: 0 });
    const pixels = split.images.subarray(index * split.featureSize, (index + 1) * split.featureSize);
    // The dataset holds bytes / 255; round back to the stored bytes.
    const grey = Buffer.from(Array.from(pixels, (value) => Math.round(value * 255)));
    image.data = grey;
    const file = path.join(
      directory,
      classes[split.labels[index]!]!,
      `${String(index).padStart(5, '0')}.png`,
    );
    writeFileSync(file, PNG.sync.write(image, { colorType: 0, inputColorType: 0 }));
  }
}

/**
 * Writes the first `train` training and `test` test images of Fashion-MNIST under `directory`.
 *
 * @returns the class folder names
 */
export async function writeFashionPngs(directory: string, train = 6000, test = 1000): Promise<string[]> {
  const dataset = await loadFashionMnist();
  const classes = (dataset.labelNames ?? []).map(folderName);
  writeSplit(dataset.train, train, classes, path.join(directory, 'train'));
  writeSplit(dataset.test, test, classes, path.join(directory, 'test'));
  return classes;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [directory, train, test] = process.argv.slice(2);
  const target = directory ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'data', 'fashion');
  const classes = await writeFashionPngs(target, Number(train ?? 6000), Number(test ?? 1000));
  console.log(`wrote Fashion-MNIST PNGs of ${classes.length} classes to ${target}`);
}
