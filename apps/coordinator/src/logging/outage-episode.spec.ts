import { describe, expect, it } from 'vitest';
import { describeCause, OutageEpisode, type OutageLine } from './outage-episode.js';

/** An episode on a clock the test moves, and the lines it wrote. */
function episode(dependency = 'postgres') {
  let now = 1_000;
  const lines: OutageLine[] = [];
  const outage = new OutageEpisode(dependency, (line) => lines.push(line), () => now);
  return {
    outage,
    lines,
    advance: (ms: number) => (now += ms),
    above: (level: 'debug') => lines.filter((line) => line.level !== level),
  };
}

const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5491'), { code: 'ECONNREFUSED' });

describe('OutageEpisode', () => {
  it('writes one warn line for the first failure, debug lines for the rest, and one line when it answers again', () => {
    const { outage, lines, advance, above } = episode();
    outage.failed(refused);
    for (let i = 0; i < 5; i++) {
      advance(1_000);
      outage.failed(new Error('the database system is starting up'));
    }
    advance(6_300);
    outage.recovered();

    expect(above('debug').map((line) => [line.level, line.msg])).toEqual([
      ['warn', 'postgres unreachable: connect ECONNREFUSED 127.0.0.1:5491'],
      ['log', 'postgres reachable again after 11.3 s (6 failures)'],
    ]);
    expect(lines.filter((line) => line.level === 'debug')).toHaveLength(5);
    expect(lines[1].msg).toBe('postgres still unreachable (2 failures): the database system is starting up');
    expect(lines.at(-1)?.fields).toEqual({ dependency: 'postgres', failures: 6, downMs: 11_300 });
    expect(outage.ongoing).toBe(false);
  });

  it('measures from the first failure on the clock it was given, not the wall clock', () => {
    const { outage, lines, advance } = episode();
    advance(50_000);
    outage.failed('connection lost');
    advance(123);
    outage.recovered();
    expect(lines.at(-1)?.msg).toBe('postgres reachable again after 0.1 s (1 failure)');
    expect(lines.at(-1)?.fields.downMs).toBe(123);
  });

  it('says nothing when the dependency answers outside an episode', () => {
    const { outage, lines } = episode();
    outage.recovered();
    outage.recovered('publisher');
    expect(lines).toEqual([]);
    expect(outage.ongoing).toBe(false);
  });

  it('starts a new episode, with its own warn line and count, after the last one ended', () => {
    const { outage, lines, advance } = episode('redis');
    outage.failed('first');
    advance(2_000);
    outage.recovered();
    advance(60_000);
    outage.failed('second');
    outage.failed('second again');
    advance(500);
    outage.recovered();
    expect(lines.filter((line) => line.level !== 'debug').map((line) => line.msg)).toEqual([
      'redis unreachable: first',
      'redis reachable again after 2.0 s (1 failure)',
      'redis unreachable: second',
      'redis reachable again after 0.5 s (2 failures)',
    ]);
  });

  it('ends an episode only once every connection that failed answers again', () => {
    const { outage, lines, advance, above } = episode('redis');
    outage.failed('connection lost', 'publisher');
    outage.failed('connection lost', 'subscriber');
    advance(1_000);
    outage.recovered('publisher');
    expect(outage.ongoing).toBe(true);
    // A connection that never failed answering says nothing about the one still down.
    outage.recovered('other');
    expect(outage.ongoing).toBe(true);
    advance(1_000);
    outage.recovered('subscriber');
    expect(above('debug').map((line) => line.msg)).toEqual(['redis unreachable: connection lost', 'redis reachable again after 2.0 s (2 failures)']);
    expect(lines).toHaveLength(3);
  });

  it('lets a connection closed on purpose stop holding the episode open; the next answer ends it', () => {
    const { outage, lines } = episode('rabbitmq');
    outage.failed('connection lost', 'participant a');
    outage.failed('connection lost', 'participant b');
    outage.forget('participant b');
    expect(outage.ongoing).toBe(true);
    outage.recovered('participant a');
    expect(outage.ongoing).toBe(false);
    expect(lines.at(-1)?.msg).toBe('rabbitmq reachable again after 0.0 s (2 failures)');
  });

  it('never writes at error level', () => {
    const { outage, lines } = episode();
    for (let i = 0; i < 3; i++) {
      outage.failed(new TypeError('boom'));
      outage.recovered();
    }
    expect(new Set(lines.map((line) => line.level))).toEqual(new Set(['warn', 'log']));
  });
});

describe('describeCause', () => {
  it('reads errors, strings, every address of an AggregateError and a broker {err}', () => {
    expect(describeCause(refused)).toBe('connect ECONNREFUSED 127.0.0.1:5491');
    expect(describeCause('connection lost')).toBe('connection lost');
    const everyAddress = new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), new Error('connect ECONNREFUSED 127.0.0.1:5432')], '');
    expect(describeCause(everyAddress)).toBe('connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432');
    expect(describeCause({ err: new Error('Socket closed abruptly during opening handshake') })).toBe('Socket closed abruptly during opening handshake');
    expect(describeCause(undefined)).toBe('undefined');
  });

  it('keeps to one bounded line', () => {
    expect(describeCause(new Error('line one\n    at frame\n  line two'))).toBe('line one at frame line two');
    expect(describeCause('x'.repeat(1_000))).toHaveLength(300);
    expect(describeCause(new Error(''))).toBe('Error');
  });
});
