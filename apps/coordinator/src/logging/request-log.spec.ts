import { describe, expect, it } from 'vitest';
import { gidOfRequestPath } from './request-log.js';

describe('gidOfRequestPath', () => {
  it('finds the gid of the client and admin routes about one transaction', () => {
    expect(gidOfRequestPath('/v1/transactions/order-1')).toBe('order-1');
    expect(gidOfRequestPath('/v1/transactions/order-1/branches')).toBe('order-1');
    expect(gidOfRequestPath('/admin/transactions/a%3Ab/retry')).toBe('a:b');
  });

  it('finds none on routes about no single transaction', () => {
    expect(gidOfRequestPath('/v1/transactions')).toBeUndefined();
    expect(gidOfRequestPath('/admin/stats')).toBeUndefined();
    expect(gidOfRequestPath('/v1/participants')).toBeUndefined();
  });

  it('keeps a badly encoded gid as it came', () => {
    expect(gidOfRequestPath('/v1/transactions/%E0%A4%A')).toBe('%E0%A4%A');
  });
});
