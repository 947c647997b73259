// Debian's Chromium, headless, driven by puppeteer-core (no browser download): a fresh profile
// folder per launch, no background traffic, downloads into a folder of the test's choosing.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";

export const chromiumPath = "/usr/bin/chromium";

export interface HeadlessChromium {
  browser: Browser;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<HeadlessChromium> {
  if (!existsSync(chromiumPath))
    throw new Error(`${chromiumPath} not found: apt-get install chromium (bash .ci/run does)`);
  const userDataDir = await mkdtemp(join(tmpdir(), "devicepass-chromium-"));
  const browser = await puppeteer.launch({
    executablePath: chromiumPath,
    headless: true,
    userDataDir,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
      "--font-render-hinting=none",
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
