import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

/**
 * Server-side request forgery guard for URLs a user gives us to call (webhooks): only public
 * unicast addresses, unless explicitly allowed (WEBHOOK_ALLOW_PRIVATE, development and tests).
 * Names are resolved and every address checked, at creation and again at each connection (a
 * name may resolve elsewhere later: DNS rebinding), by connecting only to the checked address.
 */
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network, unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata lives here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, prefix, 'ipv6');
}

/** Whether `ip` is a public unicast address (IPv4-mapped and NAT64 IPv6 judged by their IPv4). */
export function isPublicAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  if (family === 4) return !BLOCKED.check(ip, 'ipv4');
  const lower = ip.toLowerCase();
  const embedded = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/.exec(lower) ?? /^::(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (embedded) return isPublicAddress(embedded[1]!);
  const mappedHex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (mappedHex) {
    const hi = parseInt(mappedHex[1]!, 16);
    const lo = parseInt(mappedHex[2]!, 16);
    return isPublicAddress(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  return !BLOCKED.check(ip, 'ipv6');
}

export class AddressNotAllowedError extends Error {
  readonly code = 'address_not_allowed';
  constructor(message: string) {
    super(message);
    this.name = 'AddressNotAllowedError';
  }
}

function hostOf(url: URL): string {
  // URL keeps IPv6 literals in brackets.
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/**
 * Resolves the URL's host and checks every address. Throws AddressNotAllowedError naming the
 * address when one is not public (and `allowPrivate` is off), or when the name does not resolve.
 */
export async function assertPublicUrl(url: URL, allowPrivate: boolean): Promise<string[]> {
  const host = hostOf(url);
  const addresses = isIP(host)
    ? [host]
    : await new Promise<string[]>((resolve, reject) =>
        dnsLookup(host, { all: true, verbatim: true }, (err, found) => (err ? reject(new AddressNotAllowedError(`${host} does not resolve (${err.code ?? err.message})`)) : resolve(found.map((a) => a.address)))),
      );
  if (addresses.length === 0) throw new AddressNotAllowedError(`${host} does not resolve`);
  if (!allowPrivate) {
    const blocked = addresses.find((a) => !isPublicAddress(a));
    if (blocked) throw new AddressNotAllowedError(`${host} resolves to ${blocked}, which is not a public address (set WEBHOOK_ALLOW_PRIVATE=true to allow it)`);
  }
  return addresses;
}

/**
 * A `lookup` for http.request that refuses non-public addresses at connection time, so the
 * address checked is the address connected to. (An IP literal skips `lookup`: check it with
 * `assertPublicUrl` first.)
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return (callback as (e: Error | null, a: string | LookupAddress[], f?: number) => void)(err, [], undefined);
      const blocked = allowPrivate ? undefined : addresses.find((a) => !isPublicAddress(a.address));
      const cb = callback as (e: Error | null, a: string | LookupAddress[], f?: number) => void;
      if (blocked) return cb(new AddressNotAllowedError(`${hostname} resolves to ${blocked.address}, which is not a public address`), [], undefined);
      if (options.all) return cb(null, addresses);
      const first = addresses[0];
      if (!first) return cb(new AddressNotAllowedError(`${hostname} does not resolve`), [], undefined);
      cb(null, first.address, first.family);
    });
  };
}
