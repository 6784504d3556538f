import { AddressNotAllowedError, assertPublicUrl, isPublicAddress } from './ssrf';

describe('the SSRF guard for webhook URLs', () => {
  it.each([
    '127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1',
    '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', '::ffff:127.0.0.1', '::ffff:7f00:1',
    '::ffff:10.0.0.1', '64:ff9b::a9fe:a9fe', 'ff02::1', 'not an address',
  ])('treats %s as not public', (ip) => {
    expect(isPublicAddress(ip)).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('treats %s as public', (ip) => {
    expect(isPublicAddress(ip)).toBe(true);
  });

  it('refuses loopback and private literals and names that resolve to them, unless allowed', async () => {
    for (const url of ['http://127.0.0.1:8080/hook', 'http://[::1]/hook', 'http://10.1.2.3/', 'http://169.254.169.254/latest/meta-data', 'http://localhost/hook']) {
      await expect(assertPublicUrl(new URL(url), false)).rejects.toBeInstanceOf(AddressNotAllowedError);
    }
    await expect(assertPublicUrl(new URL('http://localhost/hook'), true)).resolves.toEqual(expect.arrayContaining([expect.stringMatching(/127\.0\.0\.1|::1/)]));
    await expect(assertPublicUrl(new URL('http://93.184.216.34/hook'), false)).resolves.toEqual(['93.184.216.34']);
  });

  it('refuses a name that does not resolve', async () => {
    await expect(assertPublicUrl(new URL('http://no-such-host.invalid/hook'), true)).rejects.toThrow(/does not resolve/);
  });
});
