// Helpers for the invitation tests: an invitation link read from its Secret the way an
// administrator does (kubectl), its record read by name, and a link redeemed over plain HTTP the
// way a browser does it (GET for the form's CSRF cookie and field, then the form's POST).
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import type { Kubectl } from "../harness/kubectl.ts";
import { nextSourceAddress } from "../harness/mail-clients.ts";
import { invitationSecretName } from "../src/api/names.ts";
import {
  parseInvitationRecord,
  type ConfigMapObject,
  type InvitationRecord,
} from "../src/invitations/record.ts";
import { invitationRecordName } from "../src/invitations/token.ts";

/** The link in a device's `<device>-invitation` Secret, as `kubectl get secret … | base64 -d` shows it. */
export async function invitationUrl(kubectl: Kubectl, namespace: string, device: string): Promise<string> {
  const secret = await kubectl.json<{ data?: Record<string, string> }>([
    "get", "secret", invitationSecretName(device), "-n", namespace,
  ]); // prettier-ignore
  const url = secret.data?.url;
  if (!url) throw new Error(`Secret ${invitationSecretName(device)} has no url`);
  return Buffer.from(url, "base64").toString("utf8");
}

export function tokenOf(link: string): string {
  return link.slice(link.lastIndexOf("/") + 1);
}

/** The record of a link, read by name (what the portal does), parsed. */
export async function recordOf(kubectl: Kubectl, namespace: string, link: string): Promise<InvitationRecord> {
  return parseInvitationRecord(
    await kubectl.json<ConfigMapObject>([
      "get", "configmap", invitationRecordName(tokenOf(link)), "-n", namespace,
    ]), // prettier-ignore
  );
}

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string },
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? "GET", headers: options.headers, localAddress: options.localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** The page's status marker (used, expired, revoked, unknown, …), or undefined on the invitation itself. */
export const pageStatus = (html: string) => /data-status="([a-zA-Z]+)"/.exec(html)?.[1];
const passwordOnPage = (html: string) =>
  /<output id="password" class="password">([^<]+)<\/output>/.exec(html)?.[1];

/** Opens a link like a browser (GET); returns the status code and the page's status marker. */
export async function openLink(link: string): Promise<{ status: number; page: string | undefined }> {
  const res = await send(link, { localAddress: nextSourceAddress() });
  return { status: res.status, page: pageStatus(res.body) };
}

/**
 * Opens a link and presses its button, from one loopback source address (the portal rate-limits
 * per client): returns the password the page shows, or the page's status when it shows none.
 */
export async function redeemLink(
  link: string,
): Promise<{ password?: string; status: number; page?: string }> {
  const localAddress = nextSourceAddress();
  const form = await send(link, { localAddress });
  if (form.status !== 200) return { status: form.status, page: pageStatus(form.body) };
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1] ?? "";
  const cookie = String(form.headers["set-cookie"]).split(";")[0]!;
  const res = await send(link, {
    method: "POST",
    localAddress,
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      origin: new URL(link).origin,
      "sec-fetch-site": "same-origin",
      cookie,
    },
    body: new URLSearchParams({ csrf }).toString(),
  });
  const password = passwordOnPage(res.body);
  return password ? { password, status: res.status } : { status: res.status, page: pageStatus(res.body) };
}
