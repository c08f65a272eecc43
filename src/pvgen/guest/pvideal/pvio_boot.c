/* pvio_boot.c - for the generated bench variants: register the batching runtime's area, then run the workload. */
#include "harness.h"
#include "pvio_protocol.h"

/* The bench links this in front of a workload whose hx_main it renamed to bench_workload_main (bench/linuxkit.py):
 * the pvgen runtime stays direct (every thunk runs the original instruction) until pvio_init registers an area
 * with the monitor's pvbatch device. */
int pvio_init(void *mem, unsigned long size);
void pvio_flush(void);
int bench_workload_main(void);

/* The environment's idle: a guest about to sleep first hands over what the runtime queued (the batch protocol's
 * `hlt` flush trigger, for a hlt that is the environment's, not the rewritten driver's). */
void hx_before_idle(void)
{
	pvio_flush();
}

int hx_main(void)
{
	void *area = hx_alloc(PVIO_AREA_SIZE, PVIO_PAGE_SIZE);
	int rc = pvio_init(area, PVIO_AREA_SIZE);

	hx_printf("pvio_boot: pvio_init=%d (0: batching active)\n", rc);
	if (rc)
		return 3;
	return bench_workload_main();
}
