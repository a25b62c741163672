import { describe, expect, it } from 'vitest';
import { crossSiteReason } from './cross-site.js';

const HOST = '127.0.0.1:7070';

describe('crossSiteReason', () => {
  it('refuses a state-changing request a browser marks cross-site or same-site', () => {
    for (const site of ['cross-site', 'same-site']) {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) expect(crossSiteReason(method, { host: HOST, 'sec-fetch-site': site })).toMatch(/another site/);
    }
  });

  it('refuses an Origin other than the request\'s own host, and Origin: null', () => {
    for (const origin of ['http://evil.example', 'http://127.0.0.1:7071', 'http://localhost:7070', 'null', 'file://', 'chrome-extension://abc']) {
      expect(crossSiteReason('POST', { host: HOST, origin })).not.toBeNull();
    }
  });

  it('lets same-origin pages, address-bar navigations and non-browsers through', () => {
    expect(crossSiteReason('POST', { host: HOST, origin: `http://${HOST}`, 'sec-fetch-site': 'same-origin' })).toBeNull();
    expect(crossSiteReason('POST', { host: HOST, 'sec-fetch-site': 'none' })).toBeNull();
    expect(crossSiteReason('POST', { host: HOST })).toBeNull();
    // A proxy that ends TLS: the page is https, the coordinator sees its Host.
    expect(crossSiteReason('POST', { host: 'dtx.example.com', origin: 'https://dtx.example.com' })).toBeNull();
    expect(crossSiteReason('POST', { host: 'DTX.example.com:443', origin: 'https://dtx.example.com' })).toBeNull();
  });

  it('leaves safe methods alone, whoever sends them', () => {
    for (const method of ['GET', 'HEAD', 'OPTIONS']) expect(crossSiteReason(method, { host: HOST, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' })).toBeNull();
  });
});
