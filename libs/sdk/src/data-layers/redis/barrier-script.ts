import { createHash } from 'node:crypto';
import {
  answerSlot,
  barrierDecision,
  barrierInserts,
  slotToRead,
  type BarrierDecision,
  type BarrierKind,
  type BarrierOrigin,
  type BarrierSlot,
  type FoundRow,
} from '../core/barrier-rules.js';

/**
 * The barrier as one Lua script, for Redis. The rules stay in barrier-rules.ts: for a barrier
 * kind (a phase's, or `undo`), `phasePlan` asks them for the decision of every possible input
 * (which inserts took × the origin and stored answer of the field found in place) and the
 * script is handed that table; Lua only makes the inserts (HSETNX), looks the decision up and
 * applies it. Nothing in
 * the Lua source comes from a call: gid, branch id, commands and arguments go through KEYS and
 * ARGV; only the business snippets' own sources (code constants of the app) are composed into it.
 *
 * The branch's hash: one field per barrier row (`phase1`, `commit`, `rollback`, as the SQL
 * table has one row per slot), its value the row's origin; the answer a row keeps
 * (stored-answer.ts: phase 1's result, or the ongoing marker) follows after a colon
 * (`phase1:<JSON>`), as the SQL row keeps it in a column.
 */

const ORIGINS: readonly BarrierOrigin[] = ['phase1', 'commit', 'rollback'];
const ANSWERS: readonly FoundRow['answer'][] = ['final', 'ongoing'];

/** What Lua reads of a decision: whether to run the queued work, store the result, take an ongoing phase 1 over. */
type LuaDecision = Pick<BarrierDecision, 'kind'> & { storesResult?: boolean; takesOverOngoingPhase1?: boolean };
/** A decision, or (when the rules need the row found in place) the field to read and the decision by what it holds (`origin|answer`). */
type LuaTableEntry = LuaDecision | { readSlot: BarrierSlot; byRow: Record<string, LuaDecision> };

/** One barrier kind's inserts and the decision of every input, keyed as the script keys them. */
export interface PhasePlan {
  kind: BarrierKind;
  inserts: readonly [slot: BarrierSlot, origin: BarrierOrigin][];
  /**
   * Key: the inserts that took as bits (`10`: the first took, the second did not), then
   * `|origin|answer` of the field read when the rules needed it (`0|phase1|ongoing`).
   */
  decisions: ReadonlyMap<string, BarrierDecision>;
  /** The same table as Lua gets it (JSON), decisions nested under the bits. */
  luaTable: Record<string, LuaTableEntry>;
  /** The field that keeps this phase's answer (answerSlot) and the origin it is written with; null: the phase keeps none. */
  answerField: { slot: BarrierSlot; origin: BarrierOrigin } | null;
}

/** Every combination of n booleans, as bit strings (`'1'` = the insert took). */
function bitStrings(n: number): string[] {
  if (n === 0) return [''];
  return bitStrings(n - 1).flatMap((rest) => [`1${rest}`, `0${rest}`]);
}

const forLua = (d: BarrierDecision): LuaDecision =>
  d.kind === 'run' ? { kind: d.kind, storesResult: d.storesResult, takesOverOngoingPhase1: d.takesOverOngoingPhase1 } : { kind: d.kind };

export function phasePlan(kind: BarrierKind): PhasePlan {
  const inserts = barrierInserts(kind);
  const decisions = new Map<string, BarrierDecision>();
  const luaTable: Record<string, LuaTableEntry> = {};
  for (const bits of bitStrings(inserts.length)) {
    const inserted = [...bits].map((bit) => bit === '1');
    const readSlot = slotToRead(kind, inserted);
    if (readSlot) {
      const byRow: Record<string, LuaDecision> = {};
      for (const origin of ORIGINS) {
        for (const answer of ANSWERS) {
          const decision = barrierDecision(kind, inserted, { origin, answer });
          decisions.set(`${bits}|${origin}|${answer}`, decision);
          byRow[`${origin}|${answer}`] = forLua(decision);
        }
      }
      luaTable[bits] = { readSlot, byRow };
    } else {
      const decision = barrierDecision(kind, inserted, null);
      decisions.set(bits, decision);
      luaTable[bits] = forLua(decision);
    }
  }
  const slot = answerSlot(kind);
  const origin = inserts.find((insert) => insert.slot === slot)?.origin ?? null;
  return {
    kind,
    inserts: inserts.map((insert) => [insert.slot, insert.origin] as const),
    decisions,
    luaTable,
    answerField: slot && origin ? { slot, origin } : null,
  };
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
 * ARGV[1]: the header (JSON, made by the layer: inserts, decision table, the answer field, the
 * ongoing marker's text, whether the answer is ongoing, the queued ops' shapes, probe flag,
 * retention); ARGV[2]: the answer field's value to write (`origin:<stored answer>`), when the
 * answer is ongoing or the decision stores the result; then the commands' words and the
 * snippets' arguments, in queue order.
 * Replies (arrays of strings only, the same in RESP2 and RESP3):
 * - {'done', key, hasStored, stored}: the decision `key` was applied (`stored`: the answer the
 *   field read keeps, when it keeps one);
 * - {'run'}: a probe whose decision is `run`: nothing was written;
 * - {'refused', reason, message}: a snippet refused: the inserts were undone;
 * - an error reply: a command or snippet failed: the inserts were undone.
 * A rollback's take-over of an ongoing phase 1 (its field becomes the marker `rollback`) and the
 * answer field are written only once every queued op went through: a failed one leaves them as
 * they were, as it leaves no insert.
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
if decision ~= nil and decision.readSlot ~= nil then
  local value = redis.call('HGET', branch, decision.readSlot)
  if not value then
    undo()
    return redis.error_reply('DTXBARRIER the barrier field ' .. decision.readSlot .. ' vanished')
  end
  local origin = string.match(value, '^[^:]*')
  local answer = 'final'
  if #value > #origin then
    hasStored, stored = '1', string.sub(value, #origin + 2)
    if stored == header.ongoingText then answer = 'ongoing' end
  end
  key = bits .. '|' .. origin .. '|' .. answer
  decision = decision.byRow[origin .. '|' .. answer]
end
if decision == nil then
  undo()
  return redis.error_reply('DTXBARRIER no decision for ' .. key .. ' (a barrier field holds an unknown origin)')
end
local wrote = #taken > 0
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
  if decision.takesOverOngoingPhase1 and redis.call('HGET', branch, 'phase1') == 'phase1:' .. header.ongoingText then
    redis.call('HSET', branch, 'phase1', 'rollback')
    wrote = true
  end
  if header.answerSlot and (header.answerOngoing or decision.storesResult) then
    redis.call('HSET', branch, header.answerSlot, ARGV[2])
    wrote = true
  end
end
if wrote then
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
