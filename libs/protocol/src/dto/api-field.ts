/**
 * OpenAPI descriptions of the request DTOs without a runtime dependency on @nestjs/swagger, so
 * the SDK (which imports this package) never loads Swagger. The descriptions are kept where the
 * Swagger CLI plugin keeps the ones it generates: a static `_OPENAPI_METADATA_FACTORY` method
 * on the class, which @nestjs/swagger reads when it builds a document (and applies exactly as
 * it would `@ApiProperty`). Without Swagger loaded, it is an inert static method.
 */

/** The name @nestjs/swagger looks for (its plugin-constants METADATA_FACTORY_NAME). */
const OPENAPI_METADATA_FACTORY = '_OPENAPI_METADATA_FACTORY';

/** The `@ApiProperty` options the DTOs use. */
export interface ApiFieldOptions {
  description?: string;
  example?: unknown;
  default?: unknown;
  /** A class, a list of one class, or an OpenAPI type name; by default the property's design type. */
  type?: string | (new (...args: never[]) => unknown) | [new (...args: never[]) => unknown];
  isArray?: boolean;
  enum?: readonly (string | number)[];
  enumName?: string;
  format?: string;
  pattern?: string;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  nullable?: boolean;
  additionalProperties?: boolean | { type: string; maxLength?: number };
  /** Any JSON value: the coordinator's document finisher writes the field as the empty schema `{}` (its ANY_JSON_MARK). */
  'x-any-json'?: true;
}

type FieldMetadata = ApiFieldOptions & { required: boolean };
type DocumentedClass = { [OPENAPI_METADATA_FACTORY]?: () => Record<string, FieldMetadata> };

function describe(target: object, key: string | symbol, metadata: FieldMetadata): void {
  if (typeof key !== 'string') throw new Error('an API field is named by a string');
  const owner = target.constructor as DocumentedClass;
  let fields: Record<string, FieldMetadata>;
  if (Object.prototype.hasOwnProperty.call(owner, OPENAPI_METADATA_FACTORY)) {
    fields = owner[OPENAPI_METADATA_FACTORY]!();
  } else {
    fields = {};
    // Swagger walks the prototype chain itself, so each class lists only its own fields.
    Object.defineProperty(owner, OPENAPI_METADATA_FACTORY, { value: () => fields, enumerable: false });
  }
  fields[key] = metadata;
}

/** A required field of a request body (as `@ApiProperty`). */
export function ApiField(options: ApiFieldOptions = {}): PropertyDecorator {
  return (target, key) => describe(target, key, { ...options, required: true });
}

/** An optional field of a request body (as `@ApiPropertyOptional`). */
export function ApiOptionalField(options: ApiFieldOptions = {}): PropertyDecorator {
  return (target, key) => describe(target, key, { ...options, required: false });
}
