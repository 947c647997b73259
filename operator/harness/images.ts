// The container images a harness node runs, built without Docker by images/build-images.sh (a
// no-op when its content-keyed cache holds them) and imported into the node's containerd.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const buildScript = join(import.meta.dirname, "images", "build-images.sh");

export const imageNames = ["pause", "operator", "dovecot"] as const;
export type ImageName = (typeof imageNames)[number];

export interface BuiltImage {
  /** The reference pods name, as containerd records it (docker.io/library/… for short names). */
  ref: string;
  /** A docker-archive tarball for `ctr images import`. */
  archive: string;
  /** The image's numeric user, `uid:gid`. */
  user: { uid: number; gid: number };
}

let built: Promise<Record<ImageName, BuiltImage>> | undefined;

/** Builds (or finds in the cache) every image the node tests run. */
export function buildImages(): Promise<Record<ImageName, BuiltImage>> {
  built ??= run("bash", [buildScript, ...imageNames], {
    maxBuffer: 16 * 1024 * 1024,
    timeout: 60 * 60_000,
  }).then(({ stdout }) => {
    const images: Partial<Record<ImageName, BuiltImage>> = {};
    for (const line of stdout.trim().split("\n")) {
      const [name, ref, archive, user] = line.split(" ");
      const [uid, gid] = (user ?? "").split(":").map(Number);
      if (!name || !ref || !archive || uid === undefined || gid === undefined)
        throw new Error(`build-images.sh printed an unexpected line: ${line}`);
      images[name as ImageName] = { ref, archive, user: { uid, gid } };
    }
    for (const name of imageNames)
      if (!images[name]) throw new Error(`build-images.sh built no ${name} image`);
    return images as Record<ImageName, BuiltImage>;
  });
  return built;
}
