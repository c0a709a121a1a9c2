/** Renders rows as an aligned table for people; cli-table3 is loaded only when a table is printed. */
export async function renderTable(head: string[], rows: (string | number | null | undefined)[][], options: {colour?: boolean} = {}): Promise<string> {
  const {default: Table} = await import('cli-table3')
  const table = new Table({
    head,
    style: {head: options.colour ? ['cyan'] : [], border: options.colour ? ['grey'] : []},
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
    },
  })
  for (const row of rows) table.push(row.map((cell) => (cell === null || cell === undefined ? '-' : String(cell))))
  return table.toString().split('\n').map((line) => line.replace(/^ /, '').trimEnd()).join('\n')
}
