import { Column, Entity, PrimaryColumn } from 'typeorm';

/** Units of one SKU: free to sell, held by reservations, sold. Their sum only changes by restocking. */
@Entity({ name: 'stock' })
export class StockEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  sku!: string;

  @Column({ type: 'integer' })
  available!: number;

  @Column({ type: 'integer', default: 0 })
  reserved!: number;

  @Column({ type: 'integer', default: 0 })
  sold!: number;
}
