// class-transformer's @Type reads design types through Reflect.getMetadata as the classes are
// defined: load the polyfill first, whatever the importer loaded before.
import 'reflect-metadata';
import { ApiField, ApiOptionalField } from './api-field.js';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { MODES, NAME_PATTERN, type Mode } from '../states.js';

/** A DNS name, an IPv4 address or an IPv6 address (without brackets). */
const HOST_PATTERN = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

export const TRANSPORTS = ['http', 'tcp', 'redis', 'rabbitmq', 'nats'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export class ParticipantActionDto {
  @ApiField({ pattern: NAME_PATTERN.source, maxLength: 64, example: 'debit' })
  @IsString()
  @Matches(NAME_PATTERN, { message: '$property must match [A-Za-z0-9_.:-]{1,64}' })
  name!: string;

  @ApiField({ enum: MODES, enumName: 'Mode', isArray: true, minItems: 1, maxItems: MODES.length, description: 'The modes this action takes part in.', example: ['tcc', 'saga'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MODES.length)
  @IsIn(MODES, { each: true })
  modes!: Mode[];
}

/** POST /v1/participants (PROTOCOL.md 4). */
export class RegisterParticipantDto {
  @ApiField({ description: 'The name clients use in branches and steps.', pattern: NAME_PATTERN.source, maxLength: 64, example: 'account' })
  @IsString()
  @Matches(NAME_PATTERN, { message: '$property must match [A-Za-z0-9_.:-]{1,64}' })
  name!: string;

  @ApiField({
    enum: TRANSPORTS,
    enumName: 'Transport',
    description:
      'http: `endpoint`; tcp (NestJS microservices TCP): `host` and `port`; redis, rabbitmq, nats (the NestJS transports of those brokers): no address, ' +
      'the coordinator uses its own REDIS_URL, RABBITMQ_URL or NATS_URL (400 TRANSPORT_NOT_CONFIGURED for rabbitmq or nats when it has none).',
    example: 'http',
  })
  @IsIn(TRANSPORTS)
  transport!: Transport;

  @ApiOptionalField({
    description: 'http: the base URL; the coordinator POSTs `{endpoint}/{action}/{phase}`.',
    maxLength: 2048,
    example: 'http://127.0.0.1:4001/tx',
  })
  @ValidateIf((dto: RegisterParticipantDto) => dto.transport === 'http')
  @IsString()
  @MaxLength(2048)
  // No user:password@ (secrets would be stored and listed), no query or fragment (the
  // coordinator appends /{action}/{phase} to the endpoint).
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true, disallow_auth: true })
  @Matches(/^[^?#]*$/, { message: '$property must not carry a query or a fragment' })
  endpoint?: string;

  @ApiOptionalField({ description: 'tcp: host of the NestJS TCP microservice.', maxLength: 253, example: '127.0.0.1' })
  @ValidateIf((dto: RegisterParticipantDto) => dto.transport === 'tcp')
  @IsString()
  @MaxLength(253)
  @Matches(HOST_PATTERN, { message: '$property must be a host name or an IP address' })
  host?: string;

  @ApiOptionalField({ type: 'integer', format: 'int32', description: 'tcp: its port.', minimum: 1, maximum: 65535, example: 5001 })
  @ValidateIf((dto: RegisterParticipantDto) => dto.transport === 'tcp')
  @IsInt()
  @Min(1)
  @Max(65535)
  port?: number;

  @ApiOptionalField({
    type: 'boolean',
    default: false,
    description:
      'rabbitmq or nats only: this participant is a publish target, not a service that replies. Each action is a destination: the RabbitMQ queue of that name ' +
      '(default exchange, routing key = the action) or the NATS JetStream subject of that name. The coordinator publishes each call (the body of PROTOCOL.md 5.1 ' +
      'with the signature headers) and counts it delivered once the broker confirmed it; every action takes mode msg only (its `execute`). ' +
      'The consumer owns the queue or stream: the coordinator never declares one.',
    example: false,
  })
  @IsOptional()
  @IsBoolean()
  publish?: boolean;

  @ApiField({ type: [ParticipantActionDto], minItems: 1, maxItems: 200 })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(200)
  @ValidateNested({ each: true })
  @Type(() => ParticipantActionDto)
  actions!: ParticipantActionDto[];

  @ApiOptionalField({
    type: 'object',
    maxProperties: 16,
    additionalProperties: { type: 'string', maxLength: 4096 },
    description:
      'http only: headers the coordinator sends on every call to this participant (an API gateway\'s credentials, or a header a guard of the host app checks). ' +
      'At most 16; no hop-by-hop, framing, signature (webhook-*), trace or x-tx-* headers. Stored, never listed.',
    example: { 'x-gateway-key': 'k-123' },
  })
  @IsOptional()
  @IsObject()
  headers?: Record<string, string>;
}

/** POST /admin/participants/{name}/rotate-secret. */
export class RotateSecretDto {
  @ApiOptionalField({
    type: 'integer',
    format: 'int32',
    minimum: 0,
    maximum: 30 * 24 * 3600,
    default: 3600,
    description: 'How long the previous secret is still signed with, side by side with the new one; 0 revokes it at once.',
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(30 * 24 * 3600)
  overlapSeconds?: number;
}

/** The most calls in flight an operator may allow one instance to have to one participant (as PARTICIPANT_MAX_IN_FLIGHT). */
export const MAX_IN_FLIGHT_LIMIT = 10_000;

/** PUT /admin/participants/{name}/limits. */
export class ParticipantLimitsDto {
  @ApiField({
    type: 'integer',
    format: 'int32',
    minimum: 1,
    maximum: MAX_IN_FLIGHT_LIMIT,
    nullable: true,
    description:
      'The most calls each coordinator instance may have in flight to this participant at once (its adaptive limit stays at or below it); ' +
      'null: back to PARTICIPANT_MAX_IN_FLIGHT. Required: send null to clear it.',
    example: 32,
  })
  // null is a value here (clear the override); a missing field is not.
  @ValidateIf((dto: ParticipantLimitsDto) => dto.maxInFlight !== null)
  @IsInt({ message: '$property must be an integer from 1 to 10000, or null' })
  @Min(1, { message: '$property must be an integer from 1 to 10000, or null' })
  @Max(MAX_IN_FLIGHT_LIMIT, { message: '$property must be an integer from 1 to 10000, or null' })
  maxInFlight!: number | null;
}
