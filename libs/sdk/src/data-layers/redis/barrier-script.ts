import { createHash } from 'node:crypto';
import type { PhaseKind } from '@nest-dtx/protocol';
import { barrierDecision, barrierInserts, needsPhase1Origin, type BarrierDecision, type BarrierOrigin, type BarrierSlot } from '../core/barrier-rules.js';

/**
 * The barrier as one Lua script, for Redis. The rules stay in barrier-rules.ts: for a phase
 * kind, `phasePlan` asks them for the decision of every possible input (which inserts took ×
 * the origin of the phase-1 field found in place) and the script is handed that table; Lua only
 * makes the inserts (HSETNX), looks the decision up and applies it. Nothing in the Lua source
 * comes from a call: gid, branch id, commands and arguments go through KEYS and ARGV; only the
 * business snippets' own sources (code constants of the app) are composed into it.
 *
 * The branch's hash: one field per barrier row (`phase1`, `commit`, `rollback`, as the SQL
 * table has one row per slot), its value the row's origin; phase 1's result is kept in the
 * phase-1 field after a colon (`phase1:<JSON>`), as the SQL row keeps it in a column.
 */

/** The slot whose origin the rules may need (needsPhase1Origin), and where phase 1's result is kept. */
export const PHASE1_SLOT: BarrierSlot = 'phase1';
const ORIGINS: readonly BarrierOrigin[] = ['phase1', 'commit', 'rollback'];

/** What Lua reads of a decision: whether to run the queued work and whether to store the result. */
type LuaDecision = Pick<BarrierDecision, 'kind'> & { storesResult?: boolean };
type LuaTableEntry = LuaDecision | { byOrigin: Record<string, LuaDecision> };

/** One phase kind's inserts and the decision of every input, keyed as the script keys them. */
export interface PhasePlan {
  kind: PhaseKind;
  inserts: readonly [slot: BarrierSlot, origin: BarrierOrigin][];
  /** Key: the inserts that took as bits (`10`: the first took, the second did not), then `|origin` when the origin was needed. */
  decisions: ReadonlyMap<string, BarrierDecision>;
  /** The same table as Lua gets it (JSON), decisions nested under the bits. */
  luaTable: Record<string, LuaTableEntry>;
  /** The origin the phase-1 field gets when this phase stores phase 1's result (its insert's origin). */
  resultOrigin: BarrierOrigin | null;
}

/** Every combination of n booleans, as bit strings (`'1'` = the insert took). */
function bitStrings(n: number): string[] {
  if (n === 0) return [''];
  return bitStrings(n - 1).flatMap((rest) => [`1${rest}`, `0${rest}`]);
}

export function phasePlan(kind: PhaseKind): PhasePlan {
  const inserts = barrierInserts(kind);
  const decisions = new Map<string, BarrierDecision>();
  const luaTable: Record<string, LuaTableEntry> = {};
  const forLua = (d: BarrierDecision): LuaDecision => (d.kind === 'run' ? { kind: d.kind, storesResult: d.storesResult } : { kind: d.kind });
  for (const bits of bitStrings(inserts.length)) {
    const inserted = [...bits].map((bit) => bit === '1');
    if (needsPhase1Origin(kind, inserted)) {
      const byOrigin: Record<string, LuaDecision> = {};
      for (const origin of ORIGINS) {
        const decision = barrierDecision(kind, inserted, origin);
        decisions.set(`${bits}|${origin}`, decision);
        byOrigin[origin] = forLua(decision);
      }
      luaTable[bits] = { byOrigin };
    } else {
      const decision = barrierDecision(kind, inserted, null);
      decisions.set(bits, decision);
      luaTable[bits] = forLua(decision);
    }
  }
  const resultOrigin = inserts.find((insert) => insert.slot === PHASE1_SLOT)?.origin ?? null;
  return { kind, inserts: inserts.map((insert) => [insert.slot, insert.origin] as const), decisions, luaTable, resultOrigin };
}

/** A script's source and its SHA1, for EVALSHA. */
export interface BarrierScript {
  source: string;
  sha: string;
}

/**
 * The helper snippets refuse with. It raises (rather than returns) a marker the runner
 * recognises, so a snippet stops there even if it forgot the `return`.
 */
const PRELUDE = `-- nest-dtx barrier (one phase of one branch; see @nest-dtx/sdk/redis)
local DTX_REFUSAL = '__nest_dtx_refusal__'
local function dtx_refuse(reason, message)
  error({ [DTX_REFUSAL] = true, reason = tostring(reason), message = tostring(message or reason) })
end
local snippets = {}
`;

/**
 * KEYS[1]: the branch's hash; then the snippets' keys, each snippet's in order.
 * ARGV[1]: the header (JSON, made by the layer: inserts, decision table, the queued ops'
 * shapes, probe flag, retention); ARGV[2]: the phase-1 field's value when the result is stored;
 * then the commands' words and the snippets' arguments, in queue order.
 * Replies (arrays of strings only, the same in RESP2 and RESP3):
 * - {'done', key, hasStored, stored}: the decision `key` was applied (`stored`: the result phase 1
 *   stored, when the phase-1 field was read);
 * - {'run'}: a probe whose decision is `run`: nothing was written;
 * - {'refused', reason, message}: a snippet refused: the inserts were undone;
 * - an error reply: a command or snippet failed: the inserts were undone.
 */
const BODY = `
local header = cjson.decode(ARGV[1])
local branch = KEYS[1]
local taken = {}
local bits = ''
for _, insert in ipairs(header.inserts) do
  if redis.call('HSETNX', branch, insert[1], insert[2]) == 1 then
    taken[#taken + 1] = insert[1]
    bits = bits .. '1'
  else
    bits = bits .. '0'
  end
end
local function undo()
  for _, field in ipairs(taken) do redis.call('HDEL', branch, field) end
end
local key = bits
local decision = header.decisions[bits]
local hasStored, stored = '0', ''
if decision ~= nil and decision.byOrigin ~= nil then
  local value = redis.call('HGET', branch, header.originSlot)
  if not value then
    undo()
    return redis.error_reply('DTXBARRIER the barrier field ' .. header.originSlot .. ' vanished')
  end
  local origin = string.match(value, '^[^:]*')
  if #value > #origin then hasStored, stored = '1', string.sub(value, #origin + 2) end
  key = bits .. '|' .. origin
  decision = decision.byOrigin[origin]
end
if decision == nil then
  undo()
  return redis.error_reply('DTXBARRIER no decision for ' .. key .. ' (a barrier field holds an unknown origin)')
end
if decision.kind == 'run' then
  if header.probe then
    undo()
    return { 'run' }
  end
  local k, a = 2, 3
  for i, op in ipairs(header.ops) do
    local ok, failure
    if op[1] == 'c' then
      local words = {}
      for j = 1, op[2] do words[j] = ARGV[a + j - 1] end
      a = a + op[2]
      ok, failure = pcall(redis.call, unpack(words))
    else
      local keys, argv = {}, {}
      for j = 1, op[3] do keys[j] = KEYS[k + j - 1] end
      k = k + op[3]
      for j = 1, op[4] do argv[j] = ARGV[a + j - 1] end
      a = a + op[4]
      ok, failure = pcall(snippets[op[2]], keys, argv)
      -- A snippet that returns redis.error_reply(...) failed too.
      if ok and type(failure) == 'table' and failure.err ~= nil then ok = false end
    end
    if not ok then
      undo()
      if type(failure) == 'table' and failure[DTX_REFUSAL] then
        return { 'refused', failure.reason, failure.message }
      end
      local message = failure
      if type(failure) == 'table' then message = failure.err or cjson.encode(failure) end
      local what
      if op[1] == 'c' then what = 'command ' .. tostring(ARGV[a - op[2]]) else what = 'snippet ' .. op[2] end
      return redis.error_reply('DTXOP queued operation ' .. i .. ' (' .. what .. ') failed: ' .. tostring(message))
    end
  end
  if decision.storesResult then redis.call('HSET', branch, header.originSlot, ARGV[2]) end
end
if #taken > 0 then
  if header.retentionMs > 0 then redis.call('PEXPIRE', branch, header.retentionMs) else redis.call('PERSIST', branch) end
end
return { 'done', key, hasStored, stored }
`;

function script(source: string): BarrierScript {
  return { source, sha: createHash('sha1').update(source, 'utf8').digest('hex') };
}

/** The script with no snippet: the probe, and phases that queue only commands. */
export const BASE_SCRIPT: BarrierScript = script(PRELUDE + BODY);

/**
 * The script with these snippets (distinct sources, numbered from 1 in this order), each
 * wrapped as a function of its own KEYS and ARGV. Only the index is interpolated besides the
 * sources themselves; the newline before `end` keeps a trailing `--` comment from eating it.
 */
export function composeScript(sources: readonly string[]): BarrierScript {
  if (sources.length === 0) return BASE_SCRIPT;
  const wrapped = sources.map((source, i) => `snippets[${i + 1}] = function(KEYS, ARGV)\n${source}\nend\n`).join('');
  return script(PRELUDE + wrapped + BODY);
}
