// Version arithmetic for runtimes: which catalog entry or build is nearest to the version an image has.

/** Parses "3.3.5" / "3.3" / "ruby3.1" / "python3.11" into [major, minor]. */
export function parseMajorMinor(version: string): [number, number] | undefined {
  const m = /(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** "3.11" for "3.11.2", undefined when there is no major.minor. */
export function majorMinor(version: string): string | undefined {
  const v = parseMajorMinor(version);
  return v ? `${v[0]}.${v[1]}` : undefined;
}

/** Same major first, then the closest minor (the newer one on a tie); the newest when `want` is unknown. */
export function nearestVersion(available: ReadonlyArray<[number, number]>, want: [number, number] | undefined): [number, number] | undefined {
  const sorted = [...available].sort((a, b) => b[0] - a[0] || b[1] - a[1]);
  if (!want) return sorted[0];
  let best: [number, number] | undefined;
  let bestScore = Infinity;
  for (const v of sorted) {
    const score = Math.abs(v[0] - want[0]) * 1000 + Math.abs(v[1] - want[1]);
    if (score < bestScore) {
      best = v;
      bestScore = score;
    }
  }
  return best;
}

/** Orders full versions ("3.11.2", "3.11.10+deb") by their numeric parts. */
export function comparePatch(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The item whose version is nearest to `want` by major.minor, then the newest patch of that major.minor. */
export function pickNearest<T>(items: readonly T[], versionOf: (item: T) => string, want: string): T | undefined {
  const candidates = items.filter((i) => parseMajorMinor(versionOf(i)));
  const pick = nearestVersion(
    candidates.map((i) => parseMajorMinor(versionOf(i)) as [number, number]),
    parseMajorMinor(want),
  );
  if (!pick) return undefined;
  return candidates
    .filter((i) => {
      const v = parseMajorMinor(versionOf(i)) as [number, number];
      return v[0] === pick[0] && v[1] === pick[1];
    })
    .sort((a, b) => comparePatch(versionOf(b), versionOf(a)))[0];
}
