/* orchd: placeholder dispatcher, replaced by the role table. */
#include <stdio.h>
int main(void)
{
	printf("orchd %s\n", ORCHD_VERSION);
	return 0;
}
