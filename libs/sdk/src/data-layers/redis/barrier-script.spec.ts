import { describe, expect, it } from 'vitest';
import { answerSlot, barrierDecision, barrierInserts, slotToRead, type BarrierKind } from '../core/barrier-rules.js';
import { BASE_SCRIPT, composeScript, phasePlan } from './barrier-script.js';

describe('the Redis barrier script', () => {
  it.each(['phase1', 'commit', 'rollback', 'check', 'undo'] as const)('hands Lua the rules’ decision for every input of a %s', (kind: BarrierKind) => {
    const plan = phasePlan(kind);
    const n = barrierInserts(kind).length;
    expect(plan.inserts).toEqual(barrierInserts(kind).map((i) => [i.slot, i.origin]));
    expect(Object.keys(plan.luaTable)).toHaveLength(2 ** n);
    for (let mask = 0; mask < 2 ** n; mask++) {
      const inserted = Array.from({ length: n }, (_, i) => ((mask >> (n - 1 - i)) & 1) === 1);
      const bits = inserted.map((took) => (took ? '1' : '0')).join('');
      const entry = plan.luaTable[bits];
      const readSlot = slotToRead(kind, inserted);
      if (readSlot) {
        expect(entry).toHaveProperty('readSlot', readSlot);
        for (const origin of ['phase1', 'commit', 'rollback'] as const) {
          for (const answer of ['final', 'ongoing'] as const) {
            const decision = barrierDecision(kind, inserted, { origin, answer });
            expect(plan.decisions.get(`${bits}|${origin}|${answer}`)).toEqual(decision);
            expect(entry).toHaveProperty(['byRow', `${origin}|${answer}`], decision.kind === 'run' ? { ...decision } : { kind: decision.kind });
          }
        }
      } else {
        const decision = barrierDecision(kind, inserted, null);
        expect(plan.decisions.get(bits)).toEqual(decision);
        expect(entry).toEqual(decision.kind === 'run' ? { ...decision } : { kind: decision.kind });
      }
    }
    // A phase's answer is kept in its own slot, written with that slot's own origin.
    const slot = answerSlot(kind);
    expect(plan.answerField).toEqual(slot ? { slot, origin: slot } : null);
  });

  it('undo: one HSETNX of the rollback field (no phase-1 marker); run when it took, else by the field read: duplicate or run again while ongoing', () => {
    const plan = phasePlan('undo');
    expect(plan.inserts).toEqual([['rollback', 'rollback']]);
    expect(plan.luaTable['1']).toEqual({ kind: 'run', storesResult: false, takesOverOngoingPhase1: false });
    expect(plan.luaTable['0']).toMatchObject({
      readSlot: 'rollback',
      byRow: { 'rollback|final': { kind: 'skip' }, 'rollback|ongoing': { kind: 'run', storesResult: true, takesOverOngoingPhase1: false } },
    });
    expect(plan.answerField).toEqual({ slot: 'rollback', origin: 'rollback' });
  });

  it('wraps each snippet as a function of its own KEYS and ARGV, closing it on a line of its own', () => {
    expect(composeScript([])).toBe(BASE_SCRIPT);
    const composed = composeScript(['return 1 -- a trailing comment', "redis.call('GET', KEYS[1])"]);
    expect(composed.source).toContain('snippets[1] = function(KEYS, ARGV)\nreturn 1 -- a trailing comment\nend\n');
    expect(composed.source).toContain("snippets[2] = function(KEYS, ARGV)\nredis.call('GET', KEYS[1])\nend\n");
    expect(composed.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(composeScript(['return 1 -- a trailing comment', "redis.call('GET', KEYS[1])"]).sha).toBe(composed.sha);
    expect(composed.sha).not.toBe(BASE_SCRIPT.sha);
  });
});
