/* lx_ata.c - the libata-core entry points the SFF state machine calls when a command ends. */
#include <linux/libata.h>
#include "lx_env.h"

/* libata-core.c completes a qc through the SCSI/EH machinery; here the workload polls ATA_QCFLAG_ACTIVE. */
void ata_qc_complete(struct ata_queued_cmd *qc)
{
	qc->flags &= ~ATA_QCFLAG_ACTIVE;
}

int ata_port_freeze(struct ata_port *ap)
{
	_printk(KERN_ERR "ata%u: port frozen (HSM violation)\n", ap->print_id);
	ap->pflags |= ATA_PFLAG_FROZEN;
	return 0;
}

void ata_ehi_push_desc(struct ata_eh_info *ehi, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lx_vprintk("ata: ", fmt, ap);
	va_end(ap);
	hx_puts("\n");
}

/* lib/scatterlist.c */
struct scatterlist *sg_next(struct scatterlist *sg)
{
	if (sg_is_last(sg))
		return NULL;
	sg++;
	if (unlikely(sg_is_chain(sg)))
		sg = sg_chain_ptr(sg);
	return sg;
}
